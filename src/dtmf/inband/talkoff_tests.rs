//! Talk-off: speech and music must not produce digits.
