//! Kazoo's `say` module in English: a [`SayRequest`] (type, method, text) into the words
//! FreeSWITCH's `mod_say_en` would speak, then into a [`TtsRequest`] for the speech engine
//! (flite, the female voice unless the gender is masculine).

use std::time::{SystemTime, UNIX_EPOCH};

use super::library::AudioError;
use super::numbers::{cardinal, digit, iterated, ordinal};
use super::sound::{SayRequest, TtsRequest};

const DAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const NATO: [&str; 26] = [
    "Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India", "Juliett",
    "Kilo", "Lima", "Mike", "November", "Oscar", "Papa", "Quebec", "Romeo", "Sierra", "Tango",
    "Uniform", "Victor", "Whiskey", "X-ray", "Yankee", "Zulu",
];

/// The speech request that says `words` for `request`: flite, the voice from the gender.
pub fn speech(request: &SayRequest, words: String) -> TtsRequest {
    let voice = match request
        .gender
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("masculine" | "male") => "male",
        _ => "female",
    };
    TtsRequest {
        text: words,
        voice: voice.to_owned(),
        language: request.language.clone(),
        engine: "flite".to_owned(),
    }
}

/// The words for `request`, as of now for the date and time types without a timestamp.
pub fn words(request: &SayRequest) -> Result<String, AudioError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default();
    words_at(request, now)
}

/// The words for `request`, `now` (unix seconds) standing for the current time.
pub fn words_at(request: &SayRequest, now: i64) -> Result<String, AudioError> {
    if let Some(language) = &request.language {
        let language = language.to_ascii_lowercase();
        if !language.is_empty() && !language.starts_with("en") {
            return Err(AudioError::Unsupported(format!(
                "say in {language:?} (English only)"
            )));
        }
    }
    let text = request.text.trim();
    let method = request.method.trim().to_ascii_lowercase();
    let when = || text.parse::<i64>().unwrap_or(now);
    let words = match request.kind.trim().to_ascii_lowercase().as_str() {
        "number" | "items" | "persons" | "messages" => number(text, &method)?,
        "currency" => currency(text)?,
        "current_date" => date(when()),
        "current_time" => time(when()),
        "current_date_time" => format!("{} {}", date(when()), time(when())),
        "short_date_time" => {
            let at = when();
            if at.div_euclid(86_400) == now.div_euclid(86_400) {
                time(at)
            } else {
                format!("{} {}", date(at), time(at))
            }
        }
        "telephone_number" | "telephone_extension" | "account_number" => iterated(text),
        "ip_address" => ip_address(text)?,
        "email_address" | "url" => spoken_address(text),
        "name_spelled" => spelled(text, |c| c.to_ascii_uppercase().to_string()),
        "name_phonetic" => spelled(text, |c| {
            NATO[(c.to_ascii_lowercase() as u8 - b'a') as usize].to_owned()
        }),
        "postal_address" => postal_address(text),
        "time_measurement" => duration(text)?,
        other => {
            return Err(AudioError::Unsupported(format!("say type {other:?}")));
        }
    };
    if words.trim().is_empty() {
        return Err(AudioError::Say(format!(
            "{:?} gives nothing to say as {}",
            request.text, request.kind
        )));
    }
    Ok(words)
}

fn not_a(what: &str, text: &str) -> AudioError {
    AudioError::Say(format!("{text:?} is not {what}"))
}

/// A number by `method`: `pronounced` (default), `iterated` or `counted`.
fn number(text: &str, method: &str) -> Result<String, AudioError> {
    let cleaned: String = text
        .chars()
        .filter(|c| *c != ',' && !c.is_whitespace())
        .collect();
    if method == "iterated" {
        return Ok(iterated(&cleaned));
    }
    let (negative, digits) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.as_str()),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let value: u64 = whole.parse().map_err(|_| not_a("a number", text))?;
    if !fraction.chars().all(|c| c.is_ascii_digit()) {
        return Err(not_a("a number", text));
    }
    let mut words = if method == "counted" {
        ordinal(value)
    } else {
        cardinal(value)
    };
    if !fraction.is_empty() && method != "counted" {
        words = format!("{words} point {}", iterated(fraction));
    }
    Ok(if negative {
        format!("minus {words}")
    } else {
        words
    })
}

/// An amount in dollars ("12.50" → "twelve dollars and fifty cents").
fn currency(text: &str) -> Result<String, AudioError> {
    let cleaned: String = text
        .chars()
        .filter(|c| !matches!(c, '$' | ',' | ' '))
        .collect();
    let (negative, amount) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.as_str()),
    };
    let (whole, cents) = amount.split_once('.').unwrap_or((amount, ""));
    let dollars: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| not_a("an amount", text))?
    };
    let cents: u64 = match cents.len() {
        0 => 0,
        1 => cents.parse::<u64>().map_err(|_| not_a("an amount", text))? * 10,
        2 => cents.parse().map_err(|_| not_a("an amount", text))?,
        _ => return Err(not_a("an amount with at most two decimals", text)),
    };
    let unit = |n: u64, one: &str, many: &str| {
        format!("{} {}", cardinal(n), if n == 1 { one } else { many })
    };
    let words = match (dollars, cents) {
        (_, 0) => unit(dollars, "dollar", "dollars"),
        (0, _) => unit(cents, "cent", "cents"),
        _ => format!(
            "{} and {}",
            unit(dollars, "dollar", "dollars"),
            unit(cents, "cent", "cents")
        ),
    };
    Ok(if negative {
        format!("minus {words}")
    } else {
        words
    })
}

/// Year, month (1-12) and day of the days since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, usize, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// "Thursday December third two thousand twenty six" (UTC).
fn date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let (year, month, day) = civil(days);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    format!(
        "{weekday} {} {} {}",
        MONTHS[month - 1],
        ordinal(day),
        cardinal(year.unsigned_abs())
    )
}

/// "nine forty two p m", "twelve o'clock a m", "three oh five p m" (UTC).
fn time(unix: i64) -> String {
    let seconds = unix.rem_euclid(86_400);
    let (hour, minute) = ((seconds / 3600) as u64, ((seconds % 3600) / 60) as u64);
    let half = if hour < 12 { "a m" } else { "p m" };
    let hour12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    let minutes = match minute {
        0 => "o'clock".to_owned(),
        1..=9 => format!("oh {}", cardinal(minute)),
        _ => cardinal(minute),
    };
    format!("{} {minutes} {half}", cardinal(hour12))
}

/// "one hundred ninety two dot one hundred sixty eight dot one dot ten".
fn ip_address(text: &str) -> Result<String, AudioError> {
    let address: std::net::IpAddr = text.parse().map_err(|_| not_a("an IP address", text))?;
    Ok(match address {
        std::net::IpAddr::V4(v4) => v4
            .octets()
            .iter()
            .map(|octet| cardinal(u64::from(*octet)))
            .collect::<Vec<_>>()
            .join(" dot "),
        std::net::IpAddr::V6(_) => {
            spelled(text, |c| c.to_ascii_uppercase().to_string()).replace(" , ", " colon ")
        }
    })
}

/// An e-mail address or URL with its punctuation spoken ("john dot doe at example dot com").
fn spoken_address(text: &str) -> String {
    let mut words = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        let spoken = match c {
            '.' => "dot",
            '@' => "at",
            '-' => "dash",
            '_' => "underscore",
            '/' => "slash",
            ':' => "colon",
            '?' => "question mark",
            '=' => "equals",
            '&' => "and",
            '+' => "plus",
            '~' => "tilde",
            '%' => "percent",
            '#' => "pound",
            c if c.is_alphanumeric() => {
                word.push(c);
                continue;
            }
            _ => continue,
        };
        if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        words.push(spoken.to_owned());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words.join(" ")
}

/// Letters by `letter`, digits as words, a comma between (so the engine pauses), spaces kept.
fn spelled(text: &str, letter: impl Fn(char) -> String) -> String {
    text.chars()
        .filter_map(|c| {
            if c.is_ascii_alphabetic() {
                Some(letter(c))
            } else {
                digit(c).map(str::to_owned)
            }
        })
        .collect::<Vec<_>>()
        .join(" , ")
}

/// A postal address: numbers pronounced, the common abbreviations spelled out.
fn postal_address(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|word| !word.is_empty())
        .map(|word| {
            let bare = word.trim_end_matches('.');
            if let Ok(n) = bare.parse::<u64>() {
                return cardinal(n);
            }
            match bare.to_ascii_lowercase().as_str() {
                "st" => "street",
                "ave" => "avenue",
                "rd" => "road",
                "blvd" => "boulevard",
                "dr" => "drive",
                "ln" => "lane",
                "apt" => "apartment",
                "ste" => "suite",
                _ => bare,
            }
            .to_owned()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A duration given in seconds or as `[[H:]M:]S`: "one hour two minutes five seconds".
fn duration(text: &str) -> Result<String, AudioError> {
    let mut total: u64 = 0;
    for part in text.split(':') {
        let value: u64 = part
            .trim()
            .parse()
            .map_err(|_| not_a("a duration (seconds or H:M:S)", text))?;
        total = total.saturating_mul(60).saturating_add(value);
    }
    let parts = [
        (total / 3600, "hour", "hours"),
        (total % 3600 / 60, "minute", "minutes"),
        (total % 60, "second", "seconds"),
    ];
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{} {}", cardinal(*n), if *n == 1 { one } else { many }))
        .collect();
    Ok(if words.is_empty() {
        "zero seconds".to_owned()
    } else {
        words.join(" ")
    })
}

#[cfg(test)]
#[path = "say_tests.rs"]
mod tests;
