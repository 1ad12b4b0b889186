//! Canonical names of the headers the proxy reads or writes, so that a typo is a compile error
//! and a search for a header finds every place that touches it. The spellings are those
//! [`super::canonical_name`] produces, so a constant compares equal to a stored header name.

/// `Via` (RFC 3261 §20.42): the path a request took, and the path its responses take back.
pub const VIA: &str = "Via";
/// `From` (RFC 3261 §20.20): the initiator of the request, with its dialog tag.
pub const FROM: &str = "From";
/// `To` (RFC 3261 §20.39): the recipient, with the tag of the answering side.
pub const TO: &str = "To";
/// `Call-ID` (RFC 3261 §20.8): groups the messages of one dialog or registration.
pub const CALL_ID: &str = "Call-ID";
/// `CSeq` (RFC 3261 §20.16): sequence number and method of the request.
pub const CSEQ: &str = "CSeq";
/// `Contact` (RFC 3261 §20.10): where the sender wants later requests sent.
pub const CONTACT: &str = "Contact";
/// `Route` (RFC 3261 §20.34): the proxies a request must visit.
pub const ROUTE: &str = "Route";
/// `Record-Route` (RFC 3261 §20.30): the proxies that stay on the dialog's path.
pub const RECORD_ROUTE: &str = "Record-Route";
/// `Max-Forwards` (RFC 3261 §20.22): hops left before a request is refused with 483.
pub const MAX_FORWARDS: &str = "Max-Forwards";
/// `Content-Type` (RFC 3261 §20.15): media type of the body.
pub const CONTENT_TYPE: &str = "Content-Type";
/// `Content-Length` (RFC 3261 §20.14): body size, rewritten on every serialisation.
pub const CONTENT_LENGTH: &str = "Content-Length";
/// `Content-Encoding` (RFC 3261 §20.12): codings applied to the body.
pub const CONTENT_ENCODING: &str = "Content-Encoding";
/// `Require` (RFC 3261 §20.32): extensions the UAS must support.
pub const REQUIRE: &str = "Require";
/// `Proxy-Require` (RFC 3261 §20.29): extensions every proxy on the path must support.
pub const PROXY_REQUIRE: &str = "Proxy-Require";
/// `Supported` (RFC 3261 §20.37): extensions the sender supports.
pub const SUPPORTED: &str = "Supported";
/// `Unsupported` (RFC 3261 §20.40): the tags a 420 refuses.
pub const UNSUPPORTED: &str = "Unsupported";
/// `RSeq` (RFC 3262 §7.1): sequence number of a reliable provisional response.
pub const RSEQ: &str = "RSeq";
/// `RAck` (RFC 3262 §7.2): the reliable provisional response a PRACK acknowledges.
pub const RACK: &str = "RAck";
/// `Allow` (RFC 3261 §20.5): methods the sender supports.
pub const ALLOW: &str = "Allow";
/// `Accept` (RFC 3261 §20.1): body media types the sender accepts.
pub const ACCEPT: &str = "Accept";
/// `Accept-Encoding` (RFC 3261 §20.2): body codings the sender accepts.
pub const ACCEPT_ENCODING: &str = "Accept-Encoding";
/// `Event` (RFC 6665 §8.2.1): the event package of a SUBSCRIBE or NOTIFY.
pub const EVENT: &str = "Event";
/// `Refer-To` (RFC 3515 §2.1): the target of a transfer.
pub const REFER_TO: &str = "Refer-To";
/// `Referred-By` (RFC 3892): who asked for a transfer.
pub const REFERRED_BY: &str = "Referred-By";
/// `Subscription-State` (RFC 6665 §8.2.3): state of the subscription a NOTIFY reports on.
pub const SUBSCRIPTION_STATE: &str = "Subscription-State";
/// `Session-Expires` (RFC 4028 §4): the negotiated session interval.
pub const SESSION_EXPIRES: &str = "Session-Expires";
/// `Min-SE` (RFC 4028 §5): the smallest session interval the sender accepts.
pub const MIN_SE: &str = "Min-SE";
/// `Retry-After` (RFC 3261 §20.33): when a refused request may be tried again.
pub const RETRY_AFTER: &str = "Retry-After";
/// `Authorization` (RFC 3261 §20.7): credentials for a UAS.
pub const AUTHORIZATION: &str = "Authorization";
/// `Call-Info` (RFC 3261 §20.9): `answer-after=0` asks a phone to answer by itself.
pub const CALL_INFO: &str = "Call-Info";
/// `Alert-Info` (RFC 3261 §20.4): `info=alert-autoanswer` is the other common auto-answer hint.
pub const ALERT_INFO: &str = "Alert-Info";
/// `Proxy-Authorization` (RFC 3261 §20.28): credentials for a proxy.
pub const PROXY_AUTHORIZATION: &str = "Proxy-Authorization";
/// `WWW-Authenticate` (RFC 3261 §20.44): a UAS's challenge (401).
pub const WWW_AUTHENTICATE: &str = "WWW-Authenticate";
/// `Proxy-Authenticate` (RFC 3261 §20.27): a proxy's challenge (407).
pub const PROXY_AUTHENTICATE: &str = "Proxy-Authenticate";
/// `Expires` (RFC 3261 §20.19): lifetime of a registration or subscription.
pub const EXPIRES: &str = "Expires";
/// `Min-Expires` (RFC 3261 §20.23): the shortest registration a registrar grants.
pub const MIN_EXPIRES: &str = "Min-Expires";
/// `Date` (RFC 3261 §20.17): when the message was sent, always in GMT.
pub const DATE: &str = "Date";
/// `Reason` (RFC 3326): why a BYE or CANCEL was sent.
pub const REASON: &str = "Reason";
/// `Replaces` (RFC 3891): the dialog an INVITE takes over.
pub const REPLACES: &str = "Replaces";
/// `User-Agent` (RFC 3261 §20.41): the software of the requesting UA.
pub const USER_AGENT: &str = "User-Agent";
/// `Server` (RFC 3261 §20.35): the software of the answering UAS.
pub const SERVER: &str = "Server";
