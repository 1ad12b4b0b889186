//! English number words, as FreeSWITCH's `mod_say_en` speaks them: cardinals ("one thousand two
//! hundred thirty four"), ordinals ("thirty fourth") and digit by digit ("one two three four").

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];

const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

const SCALES: [&str; 7] = [
    "",
    "thousand",
    "million",
    "billion",
    "trillion",
    "quadrillion",
    "quintillion",
];

/// The cardinal words of `n` ("one thousand two hundred thirty four").
pub fn cardinal(n: u64) -> String {
    if n == 0 {
        return ONES[0].to_owned();
    }
    let mut groups = Vec::new();
    let mut rest = n;
    while rest > 0 {
        groups.push((rest % 1000) as usize);
        rest /= 1000;
    }
    let mut words: Vec<String> = Vec::new();
    for (scale, group) in groups.iter().enumerate().rev() {
        if *group == 0 {
            continue;
        }
        words.push(below_thousand(*group));
        if scale > 0 {
            words.push(SCALES[scale].to_owned());
        }
    }
    words.join(" ")
}

/// The cardinal words of `n` below 1000.
fn below_thousand(n: usize) -> String {
    let mut words = Vec::new();
    if n >= 100 {
        words.push(ONES[n / 100]);
        words.push("hundred");
    }
    let rest = n % 100;
    if rest >= 20 {
        words.push(TENS[rest / 10]);
        if !rest.is_multiple_of(10) {
            words.push(ONES[rest % 10]);
        }
    } else if rest > 0 || words.is_empty() {
        words.push(ONES[rest]);
    }
    words.join(" ")
}

/// The ordinal words of `n` ("one thousand two hundred thirty fourth").
pub fn ordinal(n: u64) -> String {
    let words = cardinal(n);
    let (head, last) = match words.rsplit_once(' ') {
        Some((head, last)) => (format!("{head} "), last),
        None => (String::new(), words.as_str()),
    };
    let last = match last {
        "one" => "first".to_owned(),
        "two" => "second".to_owned(),
        "three" => "third".to_owned(),
        "five" => "fifth".to_owned(),
        "eight" => "eighth".to_owned(),
        "nine" => "ninth".to_owned(),
        "twelve" => "twelfth".to_owned(),
        word if word.ends_with('y') => format!("{}ieth", &word[..word.len() - 1]),
        word => format!("{word}th"),
    };
    format!("{head}{last}")
}

/// The word of one digit, `None` for anything else.
pub fn digit(c: char) -> Option<&'static str> {
    c.to_digit(10).map(|d| ONES[d as usize])
}

/// Digits one by one ("one two three four"); `*` is "star", `#` "pound", letters are spelled,
/// anything else is left out.
pub fn iterated(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '*' => Some("star".to_owned()),
            '#' => Some("pound".to_owned()),
            '+' => Some("plus".to_owned()),
            c if c.is_ascii_digit() => digit(c).map(str::to_owned),
            c if c.is_ascii_alphabetic() => Some(c.to_ascii_uppercase().to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cardinals() {
        assert_eq!(cardinal(0), "zero");
        assert_eq!(cardinal(7), "seven");
        assert_eq!(cardinal(15), "fifteen");
        assert_eq!(cardinal(40), "forty");
        assert_eq!(cardinal(101), "one hundred one");
        assert_eq!(cardinal(1234), "one thousand two hundred thirty four");
        assert_eq!(cardinal(1_000_000), "one million");
        assert_eq!(cardinal(2_000_017), "two million seventeen");
        assert_eq!(
            cardinal(u64::MAX).split(' ').next(),
            Some("eighteen"),
            "the largest number still has words"
        );
    }

    #[test]
    fn ordinals() {
        assert_eq!(ordinal(1), "first");
        assert_eq!(ordinal(2), "second");
        assert_eq!(ordinal(3), "third");
        assert_eq!(ordinal(12), "twelfth");
        assert_eq!(ordinal(20), "twentieth");
        assert_eq!(ordinal(21), "twenty first");
        assert_eq!(ordinal(100), "one hundredth");
        assert_eq!(ordinal(1234), "one thousand two hundred thirty fourth");
    }

    #[test]
    fn digits_one_by_one() {
        assert_eq!(iterated("1234"), "one two three four");
        assert_eq!(
            iterated("+1 (555) 0#*"),
            "plus one five five five zero pound star"
        );
    }
}
