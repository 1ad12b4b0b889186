use super::*;

fn say(kind: &str, method: &str, text: &str) -> Result<String, AudioError> {
    words_at(
        &SayRequest {
            text: text.into(),
            kind: kind.into(),
            method: method.into(),
            language: Some("en-US".into()),
            gender: None,
        },
        // Thursday 3 December 2026, 21:42:07 UTC.
        1_796_334_127,
    )
}

#[test]
fn numbers_by_method() {
    assert_eq!(
        say("number", "pronounced", "1234").unwrap(),
        "one thousand two hundred thirty four"
    );
    assert_eq!(
        say("number", "iterated", "1234").unwrap(),
        "one two three four"
    );
    assert_eq!(
        say("number", "counted", "1234").unwrap(),
        "one thousand two hundred thirty fourth"
    );
    assert_eq!(say("items", "", "3").unwrap(), "three");
    assert_eq!(say("messages", "counted", "2").unwrap(), "second");
    assert_eq!(
        say("number", "pronounced", "-3.25").unwrap(),
        "minus three point two five"
    );
    assert!(matches!(
        say("number", "pronounced", "lots"),
        Err(AudioError::Say(_))
    ));
}

#[test]
fn currency() {
    assert_eq!(
        say("currency", "", "12.50").unwrap(),
        "twelve dollars and fifty cents"
    );
    assert_eq!(
        say("currency", "", "$1.01").unwrap(),
        "one dollar and one cent"
    );
    assert_eq!(
        say("currency", "", "1,000").unwrap(),
        "one thousand dollars"
    );
    assert_eq!(say("currency", "", "0.5").unwrap(), "fifty cents");
    assert!(say("currency", "", "1.234").is_err());
}

#[test]
fn dates_and_times_in_utc() {
    assert_eq!(
        say("current_date", "", "").unwrap(),
        "Thursday December third two thousand twenty six"
    );
    assert_eq!(say("current_time", "", "").unwrap(), "nine forty two p m");
    assert_eq!(say("current_time", "", "0").unwrap(), "twelve o'clock a m");
    assert_eq!(
        say("current_date_time", "", "951782700").unwrap(),
        "Tuesday February twenty ninth two thousand twelve oh five a m"
    );
    assert_eq!(
        say("short_date_time", "", "").unwrap(),
        "nine forty two p m"
    );
    assert_eq!(
        say("short_date_time", "", "0").unwrap(),
        "Thursday January first one thousand nine hundred seventy twelve o'clock a m"
    );
}

#[test]
fn digits_addresses_and_names() {
    assert_eq!(
        say("telephone_number", "", "+1 415-555-0100").unwrap(),
        "plus one four one five five five five zero one zero zero"
    );
    assert_eq!(
        say("telephone_extension", "", "2001").unwrap(),
        "two zero zero one"
    );
    assert_eq!(
        say("ip_address", "", "192.168.1.10").unwrap(),
        "one hundred ninety two dot one hundred sixty eight dot one dot ten"
    );
    assert!(say("ip_address", "", "999.1.1.1").is_err());
    assert_eq!(
        say("email_address", "", "john.doe@example.com").unwrap(),
        "john dot doe at example dot com"
    );
    assert_eq!(
        say("url", "", "https://kazoo.io/docs").unwrap(),
        "https colon slash slash kazoo dot io slash docs"
    );
    assert_eq!(say("name_spelled", "", "Bob").unwrap(), "B , O , B");
    assert_eq!(
        say("name_phonetic", "", "Bob7").unwrap(),
        "Bravo , Oscar , Bravo , seven"
    );
    assert_eq!(
        say("postal_address", "", "1600 Pennsylvania Ave.").unwrap(),
        "one thousand six hundred Pennsylvania avenue"
    );
    assert_eq!(
        say("time_measurement", "", "3725").unwrap(),
        "one hour two minutes five seconds"
    );
    assert_eq!(
        say("time_measurement", "", "1:30").unwrap(),
        "one minute thirty seconds"
    );
}

#[test]
fn unknown_types_and_languages_are_refused() {
    assert!(matches!(
        say("weather", "", "1"),
        Err(AudioError::Unsupported(_))
    ));
    let french = SayRequest {
        text: "1".into(),
        kind: "number".into(),
        method: "pronounced".into(),
        language: Some("fr-FR".into()),
        gender: Some("masculine".into()),
    };
    assert!(matches!(
        words_at(&french, 0),
        Err(AudioError::Unsupported(_))
    ));
    let speech = speech(&french, "un".into());
    assert_eq!(
        (speech.engine.as_str(), speech.voice.as_str()),
        ("flite", "male")
    );
}
