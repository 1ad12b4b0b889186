//! Kazoo's rule for which metaflow an endpoint gets: the account's, the device's and the owner
//! user's metaflow objects deep-merged (`kz_json:merge_recursive([Account, Endpoint, Owner])`),
//! the later one winning, down to single `numbers` entries and the keys of their `data`. So a user
//! adds or overrides one code on top of the account's codes instead of replacing them all.

use serde_json::{Map, Value};

/// The deep merge of `layers`, later layers winning: objects merge key by key (recursively),
/// anything else (strings, numbers, arrays) is replaced whole. A `null` counts as absent, as it
/// does in validation, so it neither adds nor removes a key.
pub fn merge_recursive<'a>(
    layers: impl IntoIterator<Item = &'a Map<String, Value>>,
) -> Map<String, Value> {
    let mut merged = Map::new();
    for layer in layers {
        merge_into(&mut merged, layer);
    }
    merged
}

/// Merges `layer` over `into`.
fn merge_into(into: &mut Map<String, Value>, layer: &Map<String, Value>) {
    for (key, value) in layer {
        match (into.get_mut(key), value) {
            (_, Value::Null) => {}
            (Some(Value::Object(existing)), Value::Object(over)) => merge_into(existing, over),
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn later_layers_win_down_to_single_codes_and_data_keys() {
        let account = object(json!({
            "binding_digit": "*",
            "numbers": {"9": {"module": "record_call", "data": {"action": "toggle", "format": "wav"}},
                        "0": {"module": "hangup"}},
            "patterns": {"^2(\\d+)$": {"module": "transfer"}}
        }));
        let device = object(json!({"numbers": {"9": {"data": {"format": "pcap"}}},
                                   "listen_on": "both"}));
        let user = object(
            json!({"numbers": {"5": {"module": "hold"}}, "listen_on": null,
                                 "binding_digit": "#"}),
        );
        let merged = merge_recursive([&account, &device, &user]);
        assert_eq!(
            Value::Object(merged),
            json!({
                "binding_digit": "#",
                "numbers": {"9": {"module": "record_call",
                                  "data": {"action": "toggle", "format": "pcap"}},
                            "0": {"module": "hangup"},
                            "5": {"module": "hold"}},
                "patterns": {"^2(\\d+)$": {"module": "transfer"}},
                "listen_on": "both"
            })
        );
    }

    #[test]
    fn arrays_and_scalars_are_replaced_whole() {
        let lower = object(json!({"a": [1, 2], "b": {"c": 1}}));
        let upper = object(json!({"a": [3], "b": 7}));
        assert_eq!(
            Value::Object(merge_recursive([&lower, &upper])),
            json!({"a": [3], "b": 7})
        );
    }
}
