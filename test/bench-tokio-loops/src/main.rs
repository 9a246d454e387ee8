//! tokio's side of test/benchmark-loops.c, on the multi-thread runtime
//! with a worker thread per core (tokio's default):
//!
//!   bench-tokio-loops mixed COUNT MS CPU_US
//!       COUNT tasks at once, each sleeps MS ms, then computes CPU_US
//!       microseconds of its thread's own CPU time (as iob_kind_mixed
//!       does: the same spin on CLOCK_THREAD_CPUTIME_ID).
//!   bench-tokio-loops tcp HOST:PORT COUNT MS
//!       COUNT requests at once to iobound-slow-service, a connection
//!       each: send "wait MS\n", expect "done MS\n".
//!   bench-tokio-loops http URL COUNT MS
//!       (test/benchmark-http.c's peer) COUNT GETs of URL at once through
//!       one hyper Client (its connection pool, HTTP/1.1), each answer
//!       read whole: expect 200 and "done MS\n".
//!
//! Prints one line for benchmark-loops, from the first operation to the
//! last one's end:
//!
//!   result WALL_MS CPU_MS USER_MS SYS_MS OK FAILED FIRST_ERROR|-
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn cpu_ms() -> (f64, f64) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    (ms(ru.ru_utime), ms(ru.ru_stime))
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

static SINK: AtomicU32 = AtomicU32::new(0);

fn compute(us: u64) {
    let end = thread_cpu_ns() + us * 1000;
    let mut x: u32 = 1;
    let p = &mut x as *mut u32;
    while thread_cpu_ns() < end {
        for _ in 0..1024 {
            // Volatile, as the C side's: every step is computed.
            unsafe { p.write_volatile(p.read_volatile().wrapping_mul(1664525).wrapping_add(1013904223)) };
        }
    }
    SINK.fetch_add(x, Ordering::Relaxed);
}

struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Tally {
    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap();
        if first.is_none() {
            *first = Some(why);
        }
    }
}

async fn request(addr: &str, request: &[u8], expected: &[u8]) -> Result<(), String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    s.write_all(request).await.map_err(|e| e.to_string())?;
    let mut answer = Vec::with_capacity(16);
    let mut buf = [0u8; 64];
    while !answer.ends_with(b"\n") {
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the service hung up".into());
        }
        answer.extend_from_slice(&buf[..n]);
    }
    if answer == expected {
        Ok(())
    } else {
        Err(format!("answer {:?}", String::from_utf8_lossy(&answer)))
    }
}

async fn get(client: &hyper::Client<hyper::client::HttpConnector>, uri: hyper::Uri,
             expected: &[u8]) -> Result<(), String> {
    let answer = client.get(uri).await.map_err(|e| e.to_string())?;
    let status = answer.status();
    let body = hyper::body::to_bytes(answer.into_body()).await.map_err(|e| e.to_string())?;
    if status == hyper::StatusCode::OK && body.as_ref() == expected {
        Ok(())
    } else {
        Err(format!("HTTP {}, {:?}", status.as_u16(), String::from_utf8_lossy(&body)))
    }
}

fn number(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| {
        eprintln!("bench-tokio-loops: not a number: {}", s);
        std::process::exit(2)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 || (args[1] != "mixed" && args[1] != "tcp" && args[1] != "http") {
        eprintln!("usage: bench-tokio-loops mixed COUNT MS CPU_US | tcp HOST:PORT COUNT MS | http URL COUNT MS");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let tally = Arc::new(Tally { ok: AtomicU64::new(0), failed: AtomicU64::new(0), first: Mutex::new(None) });
    let (u0, s0) = cpu_ms();
    let t0 = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        if args[1] == "mixed" {
            let (count, ms, cpu_us) = (number(&args[2]), number(&args[3]), number(&args[4]));
            tasks.reserve(count as usize);
            for _ in 0..count {
                let tally = tally.clone();
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    compute(cpu_us);
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                }));
            }
        } else if args[1] == "http" {
            let uri: hyper::Uri = args[2].parse().unwrap_or_else(|e| {
                eprintln!("bench-tokio-loops: not a URL: {}: {}", args[2], e);
                std::process::exit(2)
            });
            let count = number(&args[3]);
            let client = hyper::Client::new();
            let exp: Arc<[u8]> = format!("done {}\n", args[4]).into_bytes().into();
            for _ in 0..count {
                let (tally, client, uri, exp) = (tally.clone(), client.clone(), uri.clone(), exp.clone());
                tasks.push(tokio::spawn(async move {
                    match get(&client, uri, &exp).await {
                        Ok(()) => { tally.ok.fetch_add(1, Ordering::Relaxed); }
                        Err(e) => tally.fail(e),
                    }
                }));
            }
        } else {
            let addr: Arc<str> = args[2].clone().into();
            let count = number(&args[3]);
            let req: Arc<[u8]> = format!("wait {}\n", args[4]).into_bytes().into();
            let exp: Arc<[u8]> = format!("done {}\n", args[4]).into_bytes().into();
            for _ in 0..count {
                let (tally, addr, req, exp) = (tally.clone(), addr.clone(), req.clone(), exp.clone());
                tasks.push(tokio::spawn(async move {
                    match request(&addr, &req, &exp).await {
                        Ok(()) => { tally.ok.fetch_add(1, Ordering::Relaxed); }
                        Err(e) => tally.fail(e),
                    }
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let wall = t0.elapsed().as_secs_f64() * 1e3;
    let (u1, s1) = cpu_ms();
    let first = tally.first.lock().unwrap().clone().unwrap_or_else(|| "-".into());
    println!("result {:.1} {:.1} {:.1} {:.1} {} {} {}", wall, u1 - u0 + s1 - s0, u1 - u0, s1 - s0,
             tally.ok.load(Ordering::Relaxed), tally.failed.load(Ordering::Relaxed), first);
}
