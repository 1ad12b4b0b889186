//! `ctl calls` and `ctl hangup`: the channels of every account, and the channel action that
//! runs the `hangup` module on one call.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{Api, CtlError};
use crate::api::v2::DEFAULT_ACCOUNT_ID;

/// One line of `ctl calls`.
struct Row {
    call_id: String,
    account_id: String,
    from: String,
    to: String,
    state: String,
    age_s: Option<u64>,
    legs: usize,
}

/// The channels of every account, as `(account_id, channel)` pairs.
fn channels(api: &Api<'_>) -> Result<Vec<(String, Value)>, CtlError> {
    let accounts = api.v2("GET", "/v2/accounts", None)?;
    let ids: Vec<String> = accounts["data"]
        .as_array()
        .ok_or_else(|| CtlError::BadAnswer("the account list is not a list".into()))?
        .iter()
        .filter_map(|account| account["id"].as_str().map(str::to_owned))
        .collect();
    let mut found = Vec::new();
    for id in ids {
        let path = format!("/v2/accounts/{}/channels", encode(&id));
        let listed = api.v2("GET", &path, None)?;
        for channel in listed["data"].as_array().into_iter().flatten() {
            found.push((id.clone(), channel.clone()));
        }
    }
    Ok(found)
}

fn row(account_id: &str, channel: &Value, now: u64) -> Row {
    let text = |key: &str| channel[key].as_str().unwrap_or("").to_owned();
    let mut state = if channel["answered"] == true {
        "answered".to_owned()
    } else {
        "ringing".to_owned()
    };
    if channel["recording"] == true {
        state.push_str(",recording");
    }
    let legs = 1 + usize::from(channel["b_call_id"].is_string());
    Row {
        call_id: text("call_id"),
        account_id: account_id.to_owned(),
        from: text("from"),
        to: text("to"),
        state,
        age_s: channel["start"]
            .as_str()
            .and_then(parse_rfc3339_seconds)
            .map(|start| now.saturating_sub(start)),
        legs,
    }
}

/// `ctl calls`: a table (or a JSON array) of the calls in progress.
pub(super) fn list(api: &Api<'_>, json: bool, out: &mut dyn Write) -> Result<(), CtlError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let rows: Vec<Row> = channels(api)?
        .iter()
        .map(|(account, channel)| row(account, channel, now))
        .collect();
    if json {
        let items: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({"call_id": r.call_id, "account_id": r.account_id, "from": r.from,
                       "to": r.to, "state": r.state, "age_s": r.age_s, "legs": r.legs})
            })
            .collect();
        writeln!(out, "{}", Value::Array(items))?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no calls in progress")?;
        return Ok(());
    }
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.call_id.clone(),
                r.from.clone(),
                r.to.clone(),
                r.state.clone(),
                r.age_s.map(age).unwrap_or_else(|| "?".into()),
                r.legs.to_string(),
            ]
        })
        .collect();
    let header = ["CALL-ID", "FROM", "TO", "STATE", "AGE", "LEGS"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for line in std::iter::once(&header).chain(&cells) {
        let padded: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", padded.join("  ").trim_end())?;
    }
    writeln!(out, "{} call(s)", rows.len())?;
    Ok(())
}

/// `ctl hangup`: runs the `hangup` module on the call through its account's channel action.
pub(super) fn hangup(
    api: &Api<'_>,
    call_id: &str,
    account: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CtlError> {
    let account = match account {
        Some(account) => account.to_owned(),
        None => channels(api)?
            .into_iter()
            .find(|(_, channel)| channel["call_id"] == call_id)
            .map(|(account, _)| account)
            .unwrap_or_else(|| DEFAULT_ACCOUNT_ID.to_owned()),
    };
    let path = format!(
        "/v2/accounts/{}/channels/{}",
        encode(&account),
        encode(call_id)
    );
    let action = r#"{"data":{"action":"metaflow","data":{"module":"hangup"}}}"#;
    match api.v2("PUT", &path, Some(action)) {
        Ok(_) => {}
        Err(CtlError::Api { status: 404, .. }) => {
            return Err(CtlError::NoSuchCall(call_id.to_owned()));
        }
        Err(error) => return Err(error),
    }
    if json {
        writeln!(
            out,
            "{}",
            json!({"call_id": call_id, "hangup": "requested"})
        )?;
    } else {
        writeln!(out, "hangup requested for {call_id}")?;
    }
    Ok(())
}

/// Percent-encodes a path segment (Call-IDs may hold `@`, `/`, `%` and more).
fn encode(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@!$&'()*+,;=:".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `1h02m`, `3m05s` or `42s`.
fn age(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

/// Seconds since the Unix epoch of `YYYY-MM-DDTHH:MM:SS[.fff]Z`, as the API writes `start`.
fn parse_rfc3339_seconds(text: &str) -> Option<u64> {
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        text.get(range).and_then(|digits| digits.parse().ok())
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if text.get(10..11)? != "T" || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_parse_to_epoch_seconds() {
        assert_eq!(parse_rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_seconds("2026-12-03T19:04:04Z"),
            Some(1_796_324_644)
        );
        assert_eq!(
            parse_rfc3339_seconds("2000-03-01T00:00:00.123Z"),
            Some(951_868_800)
        );
        assert_eq!(parse_rfc3339_seconds("yesterday"), None);
    }

    #[test]
    fn ages_read_like_a_clock() {
        assert_eq!(age(42), "42s");
        assert_eq!(age(185), "3m05s");
        assert_eq!(age(3720), "1h02m");
    }

    #[test]
    fn call_ids_are_encoded_as_one_segment() {
        assert_eq!(encode("abc@10.0.0.1"), "abc@10.0.0.1");
        assert_eq!(encode("a/b c%"), "a%2Fb%20c%25");
    }

    #[test]
    fn a_channel_becomes_a_row() {
        let channel = json!({"call_id": "c1", "from": "sip:a@x", "to": "sip:b@y",
                             "b_call_id": "c2", "answered": true, "recording": true,
                             "start": "1970-01-01T00:00:10Z"});
        let r = row("default", &channel, 70);
        assert_eq!(
            (r.state.as_str(), r.age_s, r.legs),
            ("answered,recording", Some(60), 2)
        );
    }
}
