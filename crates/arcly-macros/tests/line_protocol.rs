//! The example line protocol, built with `#[protocol]`, end to end over
//! loopback: a TCP client publishes, a `#[derive(MediaSink)]` receives.

#[path = "../examples/line_ingest.rs"]
#[allow(dead_code)]
mod line_ingest;

use arcly_macros::MediaSink;
use arcly_stream::ingest::TcpIngest;
use arcly_stream::prelude::*;
use line_ingest::{parse_line, Command, LineIngest, MAX_LINE};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

#[derive(Debug, PartialEq)]
enum Seen {
    Start(String),
    Frame(Arc<MediaFrame>),
    PublisherLeft,
}

#[derive(MediaSink)]
#[media_sink(config = frame, video = frame, audio = frame)]
#[media_sink(end_of_stream = left, on_start = start)]
struct Probe {
    tx: mpsc::UnboundedSender<Seen>,
}

impl Probe {
    async fn start(&mut self, path: &StreamPath) -> Result<()> {
        let _ = self.tx.send(Seen::Start(path.to_string()));
        Ok(())
    }
    async fn frame(&mut self, f: Arc<MediaFrame>) -> Result<()> {
        let _ = self.tx.send(Seen::Frame(f));
        Ok(())
    }
    async fn left(&mut self, _f: Arc<MediaFrame>) -> Result<()> {
        let _ = self.tx.send(Seen::PublisherLeft);
        Ok(())
    }
}

struct Server {
    engine: Engine,
    addr: std::net::SocketAddr,
    ingest: Arc<TcpIngest>,
    runner: tokio::task::JoinHandle<Result<()>>,
}

async fn server() -> Server {
    let ingest = Arc::new(LineIngest.tcp_ingest_on("127.0.0.1:0".parse().unwrap()));
    let bound = ingest.local_addr_receiver();
    let engine = Engine::builder()
        .application(AppSpec::new("live"))
        .protocol(ingest.clone())
        .build();
    let runner = tokio::spawn({
        let engine = engine.clone();
        async move { engine.run().await }
    });
    let addr = tokio::time::timeout(Duration::from_secs(5), bound)
        .await
        .expect("ingest binds")
        .unwrap();
    Server {
        engine,
        addr,
        ingest,
        runner,
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the sink got something within 5 s")
        .expect("the sink is alive")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_published_over_tcp_reach_a_derived_sink() {
    let s = server().await;
    assert_eq!(LineIngest::PROTOCOL_NAME, "line");
    assert_eq!(LineIngest::DEFAULT_PORT, 9000);
    let path = StreamPath::parse("live", "cam").unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sink = s.engine.attach_sink(path.clone(), Box::new(Probe { tx }));
    assert_eq!(next(&mut rx).await, Seen::Start("live/cam".into()));

    // What the client sends, and the frames it must become.
    let avcc = [0x01, 0x64, 0x00, 0x28, 0xff];
    let idr = [0, 0, 0, 2, 0x65, 0x88];
    let p = [0, 0, 0, 2, 0x41, 0x9a];
    let aac = [0x21, 0x10, 0x05];
    let script = format!(
        "PUBLISH live/cam\r\nC H264 {}\nV 0 {}\nK 40 {}\nA 41 {}\nV 80 {}\nEND\n",
        hex(&avcc),
        hex(&p), // before the first keyframe: the kernel's gate drops it
        hex(&idr),
        hex(&aac),
        hex(&p),
    );
    let mut client = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    client.write_all(script.as_bytes()).await.unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).await.unwrap();
    assert_eq!(reply, "OK\n");

    let mut got = Vec::new();
    loop {
        match next(&mut rx).await {
            Seen::Frame(f) => got.push(f),
            Seen::PublisherLeft => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let summary: Vec<_> = got
        .iter()
        .map(|f| {
            (
                f.codec,
                f.frame_type,
                f.is_config(),
                f.is_keyframe(),
                f.pts_ms(),
                f.payload.to_vec(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                CodecId::H264,
                FrameType::Video,
                true,
                false,
                0,
                avcc.to_vec()
            ),
            (
                CodecId::H264,
                FrameType::Video,
                false,
                true,
                40,
                idr.to_vec()
            ),
            (
                CodecId::Aac,
                FrameType::Audio,
                false,
                false,
                41,
                aac.to_vec()
            ),
            (
                CodecId::H264,
                FrameType::Video,
                false,
                false,
                80,
                p.to_vec()
            ),
        ]
    );
    // The sequence numbers come from the bus: strictly increasing.
    assert!(got.windows(2).all(|w| w[0].sequence < w[1].sequence));

    s.engine.shutdown();
    s.runner.await.unwrap().unwrap();
    sink.await.unwrap().unwrap();
    assert_eq!(s.ingest.open_connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_reason_and_unpublishes() {
    let s = server().await;
    let ask = |script: Vec<u8>| async move {
        let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        // The server may answer and close before reading everything.
        let _ = c.write_all(&script).await;
        let mut reply = String::new();
        let _ = c.read_to_string(&mut reply).await;
        reply
    };
    let r = ask(b"HELLO\n".to_vec()).await;
    assert!(r.starts_with("ERR ") && r.contains("HELLO"), "{r:?}");
    let r = ask(b"V 0 00\n".to_vec()).await;
    assert!(r.contains("first line must be PUBLISH"), "{r:?}");
    let r = ask(b"PUBLISH nope/cam\n".to_vec()).await;
    assert!(r.starts_with("ERR ") && r.contains("nope"), "{r:?}");
    let r = ask(b"PUBLISH live/x\nK 0 0g\n".to_vec()).await;
    assert_eq!(r, "OK\nERR protocol error: payload is not hex\n");
    let mut long = b"PUBLISH live/y\nK 0 ".to_vec();
    long.resize(long.len() + MAX_LINE, b'0');
    let r = ask(long).await;
    assert!(
        r.starts_with("OK\nERR ") && r.contains("longer than"),
        "{r:?}"
    );

    // Every refused publisher is gone.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.engine.publisher_count(), 0);
    s.engine.shutdown();
    s.runner.await.unwrap().unwrap();
}

#[test]
fn lines_parse_strictly() {
    let k = parse_line(b"K 40 0000000165").unwrap();
    let Command::Frame(f) = k else {
        panic!("{k:?}")
    };
    assert!(f.is_keyframe() && f.is_video() && f.pts_ms() == 40);
    assert_eq!(&f.payload[..], &[0, 0, 0, 1, 0x65]);
    assert_eq!(parse_line(b"END").unwrap(), Command::End);
    for bad in [
        &b""[..],
        b"K",
        b"K x 00",
        b"K 0 0",
        b"K 0 00 extra",
        b"C VP8 00",
        b"PUBLISH live",
        b"PUBLISH live/",
        b"\xff\xfe",
    ] {
        assert!(
            parse_line(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Hostile lines never panic the parser.
    #[test]
    fn any_line_parses_or_is_refused(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        let _ = parse_line(&line);
    }

    /// What a client writes is what the frame carries.
    #[test]
    fn frames_round_trip(
        verb in proptest::sample::select(vec!["K", "V", "A"]),
        ts in proptest::prelude::any::<i64>(),
        payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..48),
    ) {
        let line = format!("{verb} {ts} {}", hex(&payload));
        let Ok(Command::Frame(f)) = parse_line(line.as_bytes()) else {
            panic!("{line:?} was refused");
        };
        proptest::prop_assert_eq!(f.pts, ts);
        proptest::prop_assert_eq!(&f.payload[..], &payload[..]);
        proptest::prop_assert_eq!(f.is_keyframe(), verb == "K");
        proptest::prop_assert_eq!(f.is_audio(), verb == "A");
    }
}
