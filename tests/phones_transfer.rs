//! Kazoo's attended transfer between real phones: three baresip softphones register through the
//! proxy with a Kamailio registrar acting as the PBX, and the test is what each phone heard.
//! A (1000, the transferor) calls B (1001, the transferee): the call goes A → proxy → PBX →
//! proxy → B. A dials `*2` (RFC 4733): the proxy parks B on music on hold, plays ringback to A
//! and calls 1234 (C, the target) through the PBX; C answers by itself. Then either A hangs up
//! and B talks with C, or A dials `*1` (takeback) and the proxy hangs up C and reconnects A and B.
//! In the partial transfer C answers only when told, and A hangs up while C still rings: B hears
//! ringback instead of music until C answers, then talks with C.
//!
//! Each phone sends a tone of its own (A 600 Hz, B 800 Hz, C 1000 Hz; away from the ringback's
//! 440 + 480 Hz and the music's chords) and records what it receives (baresip's `sndfile`), so
//! the checks are about audio that really went through the proxy, both ways. A recording only
//! holds the packets the phone received: nothing while the proxy has not latched a new stream
//! yet (baresip sends from 127.0.0.1, not the address of its SDP, so the proxy waits out its
//! learning window, about half a second). So each phase is placed on a recording from its start
//! or from its end (see `Heard::between`), not by the wall clock alone.
//!
//! Everything runs on loopback: Kamailio on 127.0.0.2, the phones on 127.0.0.3..5, the proxy on
//! 127.0.0.1. Needs `kamailio` and `baresip`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::baresip::Baresip;
use common::calls::{assert_no_active_call, named, wait_for_events};
use common::kamailio::{BASE_MODULES, Kamailio, OPTIONS_TO_MYSELF};
use common::ports::CallPorts;
use common::proxy::Proxy;
use common::tones::Audio;

/// `*2` runs an attended transfer to 1234; `*1` takes it back.
const ATTENDED: &str = r#"{"binding_digit":"*","numbers":{"2":{"module":"transfer","data":{"target":"1234","transfer_type":"attended","takeback_dtmf":"*1"}}}}"#;
/// Where Kamailio (registrar and PBX) listens.
const KAMAILIO_IP: &str = "127.0.0.2";
/// How long each phase of a call lasts (talk, consultation, after the transfer or takeback).
const PHASE: Duration = Duration::from_secs(3);
/// How far inside a phase its audio is looked at, from either end: the proxy's reaction to a
/// digit or a hang-up and the test's polling (the missing packets are dealt with by [`Heard`]).
const MARGIN: f64 = 0.3;
/// Share of a phase's 100 ms windows that must carry the expected party's tone.
const HEARD: f64 = 0.7;
/// Share of a phase's windows that may carry a party that must not be heard.
const OVERHEARD: f64 = 0.1;
/// How long a phone or an event may take to show a step.
const STEP_WAIT: Duration = Duration::from_secs(10);

/// One phone: its address, its user at the PBX, and the tone it sends.
struct Party {
    label: char,
    ip: &'static str,
    user: &'static str,
    hz: f64,
}

/// The transferor.
const A: Party = Party {
    label: 'A',
    ip: "127.0.0.3",
    user: "1000",
    hz: 600.0,
};
/// The transferee.
const B: Party = Party {
    label: 'B',
    ip: "127.0.0.4",
    user: "1001",
    hz: 800.0,
};
/// The target, the metaflow's `1234`.
const C: Party = Party {
    label: 'C',
    ip: "127.0.0.5",
    user: "1234",
    hz: 1000.0,
};

/// Kazoo's default ringback, `%(2000,4000,440,480)`: 440 + 480 Hz for 2 s, 4 s of silence.
const RINGBACK: [f64; 2] = [440.0, 480.0];
/// Share of a ringback span's windows that must carry its tone: a span starts with the
/// ringback and lasts a little more than its first 2 s burst, the rest being its silence.
const RINGING: f64 = 0.5;
/// How long C rings before A hangs up, and again before C answers, in the partial transfer:
/// past one burst of ringback, so that B's spans keep enough windows once the margins and the
/// packets missing from its recording (about a second in all) are taken off.
const RING: Duration = Duration::from_secs(3);

/// Every sound a phone may hear but the music, labelled: the parties' tones and the ringback.
const SOUNDS: [(char, &[f64]); 4] = [
    (A.label, &[A.hz]),
    (B.label, &[B.hz]),
    (C.label, &[C.hz]),
    ('R', &RINGBACK),
];

/// Kamailio as the PBX: a registrar (no authentication) that record-routes calls to the
/// registered Contact (the proxy's) and logs every in-dialog request but ACK (`pbx: in-dialog`),
/// so the test can see that nobody was re-INVITEd or REFERred. `topoh` masks the Call-ID: the
/// call A → PBX → B comes back to the proxy as a call of its own, not a loop.
fn pbx_config() -> String {
    format!(
        "{BASE_MODULES}\
         loadmodule \"usrloc.so\"\n\
         loadmodule \"registrar.so\"\n\
         loadmodule \"topoh.so\"\n\
         modparam(\"usrloc\", \"db_mode\", 0)\n\
         modparam(\"topoh\", \"mask_callid\", 1)\n\
         modparam(\"topoh\", \"mask_ip\", \"{KAMAILIO_IP}\")\n\
         request_route {{\n\
         {OPTIONS_TO_MYSELF}\
         \x20   if (has_totag()) {{\n\
         \x20       if (!is_method(\"ACK\")) {{\n\
         \x20           xlog(\"L_NOTICE\", \"pbx: in-dialog $rm $ru\\n\");\n\
         \x20       }}\n\
         \x20       loose_route();\n\
         \x20       t_relay();\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"REGISTER\")) {{\n\
         \x20       if (!save(\"location\")) {{ sl_reply_error(); }}\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"CANCEL\")) {{\n\
         \x20       if (t_check_trans()) {{ t_relay(); }}\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"INVITE\")) {{\n\
         \x20       if (!lookup(\"location\")) {{\n\
         \x20           sl_send_reply(\"404\", \"Not Found\");\n\
         \x20           exit;\n\
         \x20       }}\n\
         \x20       record_route();\n\
         \x20       t_relay();\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   sl_send_reply(\"405\", \"Method Not Allowed\");\n\
         }}\n"
    )
}

/// How the target answers the proxy's call: at once by itself, or only on `accept` (baresip's
/// `answermode=manual`), so that it rings for as long as the test wants.
#[derive(Clone, Copy)]
enum Answer {
    Auto,
    Manual,
}

/// The PBX, the proxy in front of it with the attended-transfer metaflow, and the three phones
/// registered through the proxy. Fields drop in order: phones first, the port block last.
struct Rig {
    a: Baresip,
    b: Baresip,
    c: Baresip,
    proxy: Proxy,
    kamailio: Kamailio,
    _dir: tempfile::TempDir,
    block: CallPorts,
}

impl Rig {
    /// Starts everything on a port block of its own (Kamailio at its base; phone `i` with SIP
    /// at +2+i, control at +5+i, RTP at +8+4i) and waits for the three registrations. C
    /// answers as `target` says; A and B answer by themselves.
    fn start(target: Answer) -> Rig {
        let block = CallPorts::reserve();
        let dir = tempfile::tempdir().unwrap();
        let metaflows = dir.path().join("metaflows.json");
        std::fs::write(&metaflows, ATTENDED).unwrap();
        let pbx = format!("{KAMAILIO_IP}:{}", block.port(0));
        let proxy = Proxy::start_with_upstream(&pbx, &["--metaflows", metaflows.to_str().unwrap()]);
        let kamailio = Kamailio::start(KAMAILIO_IP, block.port(0), &pbx_config());
        let phone = |index: u16, party: &Party, answer: Answer| {
            let mode = match answer {
                Answer::Auto => "auto",
                Answer::Manual => "manual",
            };
            let account = format!(
                "<sip:{}@{pbx}>;outbound=\"sip:{}\";regint=300;answermode={mode}",
                party.user,
                proxy.sip_addr()
            );
            let mut phone = Baresip::configure(
                party.ip,
                block.port(2 + index),
                block.port(8 + 4 * index),
                &account,
            )
            .control(block.port(5 + index))
            .tone(party.hz)
            .record()
            .start();
            phone.wait_registered(STEP_WAIT);
            phone
        };
        Rig {
            a: phone(0, &A, Answer::Auto),
            b: phone(1, &B, Answer::Auto),
            c: phone(2, &C, target),
            proxy,
            kamailio,
            _dir: dir,
            block,
        }
    }

    /// A dials `digits` over RFC 4733, one `sndcode` per digit, each once the proxy has logged
    /// the previous one's end (a digit sent on top of another would be lost).
    fn press(&self, digits: &str) {
        for digit in digits.chars() {
            let ended = |rig: &Rig| {
                named(&rig.proxy.events(), "digit_ended")
                    .iter()
                    .filter(|event| event["digit"] == digit.to_string())
                    .count()
            };
            let before = ended(self);
            self.a.command("sndcode", &digit.to_string());
            let deadline = Instant::now() + STEP_WAIT;
            while ended(self) == before {
                assert!(Instant::now() < deadline, "the proxy never got {digit}");
                thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// A calls B and they talk for a phase; returns the instant they were connected. The start
    /// of every test: what differs is what happens once A dials `*2`.
    fn call(&mut self) -> Instant {
        let dial = format!("sip:{}@{KAMAILIO_IP}:{}", B.user, self.block.port(0));
        self.a.command("dial", &dial);
        self.a.wait_for("Call established", STEP_WAIT);
        self.b.wait_for("Call established", STEP_WAIT);
        let connected = Instant::now();
        thread::sleep(PHASE);
        connected
    }

    /// A calls B, they talk for a phase, A dials `*2`, C answers and talks with A for a phase.
    /// Returns the instants A and B were connected, `*2` was dialled, and C answered.
    fn call_and_consult(&mut self) -> (Instant, Instant, Instant) {
        let connected = self.call();
        self.press("*2");
        let dialled = Instant::now();
        self.c.wait_for("Call established", STEP_WAIT);
        wait_for_events(&self.proxy, &["leg_originated", "leg_consulted"], STEP_WAIT);
        let answered = Instant::now();
        thread::sleep(PHASE);
        (connected, dialled, answered)
    }

    /// A hangs up and waits for its phone to show the call ended; returns when it hung up.
    /// A leaving is what completes a transfer, whether C answered or still rings.
    fn transferor_leaves(&mut self) -> Instant {
        let left = Instant::now();
        self.a.command("hangup", "");
        self.a.wait_for("terminated", STEP_WAIT);
        left
    }

    /// The proxy reported C taking A's place and the transfer succeeding, never failing: the
    /// outcome both transfers that hand B over to C must end with.
    fn assert_transferred(&self) {
        let events = wait_for_events(
            &self.proxy,
            &["leg_replaced", "transfer_succeeded"],
            STEP_WAIT,
        );
        assert!(named(&events, "transfer_failed").is_empty(), "{events:#?}");
    }

    /// How both transfers that hand B over to C end: B and C talk for a phase, C hangs up, and
    /// every call ends without any re-INVITE or REFER. Returns when C hung up.
    fn transferee_and_target_talk(&mut self) -> Instant {
        thread::sleep(PHASE);
        let end = Instant::now();
        self.c.command("hangup", "");
        self.b.wait_for("terminated", STEP_WAIT);
        self.c.wait_for("terminated", STEP_WAIT);
        self.assert_all_ended_without_reinvite();
        end
    }

    /// Every call through the proxy ended (as many `call_ended` as `call_started`, no active
    /// call), and no phone was re-INVITEd or REFERred: the proxy moved the media itself.
    fn assert_all_ended_without_reinvite(&self) {
        assert_no_active_call(&self.proxy);
        let events = self.proxy.events();
        let (started, ended) = (named(&events, "call_started"), named(&events, "call_ended"));
        assert!(
            !started.is_empty() && ended.len() == started.len(),
            "{} calls started, {} ended: {events:#?}",
            started.len(),
            ended.len()
        );
        let in_dialog = self.kamailio.log_lines("pbx: in-dialog");
        assert!(
            in_dialog
                .iter()
                .all(|line| !line.contains("in-dialog INVITE") && !line.contains("REFER")),
            "a re-INVITE or REFER went through the PBX: {in_dialog:#?}"
        );
    }
}

/// What one phone heard, placed on the wall clock: the recording began about when its call was
/// answered and stopped when the call ended; packets that never came only make it shorter.
struct Heard {
    who: char,
    audio: Audio,
    answered: Instant,
    ended: Instant,
}

impl Heard {
    /// The recording of `phone`, whose call was answered at `answered` and ended at `ended`.
    fn of(who: char, phone: &Baresip, answered: Instant, ended: Instant) -> Heard {
        Heard {
            who,
            audio: phone.received_audio(),
            answered,
            ended,
        }
    }

    /// The audio between wall-clock `from` (counted from the recording's start) and `to`
    /// (counted back from its end), each moved [`MARGIN`] inwards. Packets that never came
    /// (before the proxy latched a stream) are missing from the recording and pull everything
    /// after them towards its start: counted from the start, an instant lands at or after its
    /// audio; counted from the end, at or before. So the span stays inside the phase however
    /// many packets were missing; it only gets shorter.
    fn between(&self, from: Instant, to: Instant) -> Audio {
        let start = from.duration_since(self.answered).as_secs_f64() + MARGIN;
        let end = self.audio.seconds() - self.ended.duration_since(to).as_secs_f64() - MARGIN;
        let span = self.audio.span(start, end);
        assert!(
            span.window_count() >= 8,
            "{} heard only {:.1} s; the span {start:.1}..{end:.1} s is too short: {}",
            self.who,
            self.audio.seconds(),
            self.timeline()
        );
        span
    }

    /// Every window of the recording, labelled with the sound it carries (`~`: other sound).
    fn timeline(&self) -> String {
        self.audio.timeline(&SOUNDS)
    }

    /// Between `from` and `to` this phone heard `party`, and none of the `others`.
    fn assert_hears(&self, from: Instant, to: Instant, party: &Party, others: &[&Party]) {
        let span = self.between(from, to);
        let share = span.share_of(&[party.hz]);
        assert!(
            share >= HEARD,
            "{} heard {} in {:.0} % of the span (want {:.0} %): {}\nwhole call: {}",
            self.who,
            party.label,
            100.0 * share,
            100.0 * HEARD,
            span.timeline(&SOUNDS),
            self.timeline()
        );
        self.assert_not_hearing(&span, others);
    }

    /// Between `from` and `to` this phone heard something other than the parties and the
    /// ringback (the music on hold), and none of `others`.
    fn assert_hears_music(&self, from: Instant, to: Instant, others: &[&Party]) {
        let span = self.between(from, to);
        let share = span.share_of_other(&SOUNDS.map(|(_, sound)| sound));
        assert!(
            share >= HEARD,
            "{} heard music in {:.0} % of the span: {}",
            self.who,
            100.0 * share,
            self.timeline()
        );
        self.assert_not_hearing(&span, others);
    }

    /// Between `from` and `to` this phone heard the ringback: its tone in at least [`RINGING`]
    /// of the windows and its silences in the rest (no music, no party), and none of `others`.
    /// Ringback is the one sound with a cadence, hence a check of its own.
    fn assert_hears_ringback(&self, from: Instant, to: Instant, others: &[&Party]) {
        let span = self.between(from, to);
        let (tone, quiet) = (span.share_of(&RINGBACK), span.share_of_quiet());
        assert!(
            tone >= RINGING && tone + quiet >= HEARD,
            "{} heard ringback in {:.0} % of the span and silence in {:.0} %: {}\nwhole call: {}",
            self.who,
            100.0 * tone,
            100.0 * quiet,
            span.timeline(&SOUNDS),
            self.timeline()
        );
        self.assert_not_hearing(&span, others);
    }

    /// In `span` none of `others` carries more than [`OVERHEARD`] of the windows.
    fn assert_not_hearing(&self, span: &Audio, others: &[&Party]) {
        for other in others {
            let share = span.share_of(&[other.hz]);
            assert!(
                share <= OVERHEARD,
                "{} overheard {} in {:.0} % of the span: {}",
                self.who,
                other.label,
                100.0 * share,
                self.timeline()
            );
        }
    }
}

/// The whole transfer: A and C talk while B hears music and neither of them; A hangs up and B
/// and C talk, without any re-INVITE or REFER; C hangs up and every call ends.
#[test]
fn attended_transfer_between_real_phones() {
    let mut rig = Rig::start(Answer::Auto);
    let (connected, dialled, answered) = rig.call_and_consult();
    let left = rig.transferor_leaves();
    rig.assert_transferred();
    let end = rig.transferee_and_target_talk();

    let a = Heard::of('A', &rig.a, connected, left);
    a.assert_hears(connected, dialled, &B, &[&C]);
    a.assert_hears(answered, left, &C, &[&B]);
    let b = Heard::of('B', &rig.b, connected, end);
    b.assert_hears(connected, dialled, &A, &[&C]);
    b.assert_hears_music(dialled, left, &[&A, &C]);
    b.assert_hears(left, end, &C, &[&A]);
    let c = Heard::of('C', &rig.c, answered, end);
    c.assert_hears(answered, left, &A, &[&B]);
    c.assert_hears(left, end, &B, &[&A]);
}

/// Takeback while consulting: A dials `*1`, the proxy hangs up C, and A and B hear each other
/// again (C heard only A); A hangs up and every call ends.
#[test]
fn takeback_reconnects_the_transferor_and_the_transferee() {
    let mut rig = Rig::start(Answer::Auto);
    let (connected, dialled, answered) = rig.call_and_consult();
    rig.press("*1");
    let taken_back = Instant::now();
    rig.c.wait_for("terminated", STEP_WAIT);
    let events = wait_for_events(&rig.proxy, &["transfer_withdrawn"], STEP_WAIT);
    assert!(named(&events, "leg_replaced").is_empty(), "{events:#?}");
    thread::sleep(PHASE);
    let end = Instant::now();
    rig.a.command("hangup", "");
    rig.a.wait_for("terminated", STEP_WAIT);
    rig.b.wait_for("terminated", STEP_WAIT);
    rig.assert_all_ended_without_reinvite();

    let a = Heard::of('A', &rig.a, connected, end);
    a.assert_hears(connected, dialled, &B, &[&C]);
    a.assert_hears(answered, taken_back, &C, &[&B]);
    a.assert_hears(taken_back, end, &B, &[&C]);
    let b = Heard::of('B', &rig.b, connected, end);
    b.assert_hears(connected, dialled, &A, &[&C]);
    b.assert_hears_music(dialled, taken_back, &[&A, &C]);
    b.assert_hears(taken_back, end, &A, &[&C]);
    let c = Heard::of('C', &rig.c, answered, taken_back);
    c.assert_hears(answered, taken_back, &A, &[&B]);
}

/// Partial transfer: C rings, A hangs up before C answers, and B hears ringback instead of the
/// music until C answers; then B and C hear each other, without any re-INVITE or REFER, and the
/// transfer succeeds. C heard nothing of A.
#[test]
fn partial_transfer_hands_the_transferee_to_the_ringing_target() {
    let mut rig = Rig::start(Answer::Manual);
    let connected = rig.call();
    rig.press("*2");
    let dialled = Instant::now();
    rig.c.wait_for("Incoming call", STEP_WAIT);
    thread::sleep(RING);
    let left = rig.transferor_leaves();
    thread::sleep(RING.saturating_sub(left.elapsed()));
    let answered = Instant::now();
    rig.c.command("accept", "");
    rig.c.wait_for("Call established", STEP_WAIT);
    rig.assert_transferred();
    let end = rig.transferee_and_target_talk();

    let a = Heard::of('A', &rig.a, connected, left);
    a.assert_hears(connected, dialled, &B, &[&C]);
    a.assert_hears_ringback(dialled, left, &[&B, &C]);
    let b = Heard::of('B', &rig.b, connected, end);
    b.assert_hears(connected, dialled, &A, &[&C]);
    b.assert_hears_music(dialled, left, &[&A, &C]);
    b.assert_hears_ringback(left, answered, &[&A, &C]);
    b.assert_hears(answered, end, &C, &[&A]);
    let c = Heard::of('C', &rig.c, answered, end);
    c.assert_hears(answered, end, &B, &[&A]);
}
