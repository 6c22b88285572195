//! The floor a server's cost per operation is set against: one OpenSSL P-256 ECDSA signature
//! verification, the figure `openssl speed -seconds 3 ecdsap256` reports as verifies/s, timed
//! in this process during the same run, so that a noisy host moves both alike.
//!
//! Invariants: the key, digest and signature are made before the clock starts. Like `openssl
//! speed` (and like the server's CPU per operation it is compared with), the figure is CPU
//! time, this thread's (`/proc/thread-self/stat`), so time the thread spends preempted by
//! other tenants does not count; only where that cannot be read is it wall time. It is measured
//! after the window, when the load threads are done and the server idle, so it neither steals
//! from nor competes with the measured work.

use std::time::{Duration, Instant};

use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::pkey_ctx::PkeyCtx;
use serde::Serialize;

use super::procfs;

/// Verifications between two looks at the clock.
const BATCH: u64 = 16;

/// One P-256 verification on this machine, now.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Floor {
    /// Microseconds of CPU per verification.
    pub openssl_p256_verify_us: f64,
    /// Verifications per CPU second, as `openssl speed` prints them.
    pub verifies_per_sec: f64,
    /// `thread_cpu`, or `wall` where the thread's CPU time could not be read.
    pub clock: &'static str,
}

/// Verifies one signature over and over for about `total` of wall time, as `openssl speed`
/// does (`EVP_PKEY_verify` of a 32-byte digest with a P-256 key).
pub fn measure(total: Duration) -> Result<Floor, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let digest = openssl::sha::sha256(b"wsauthn bench floor");
    let mut signer = PkeyCtx::new(&key)?;
    signer.sign_init()?;
    let mut signature = Vec::new();
    signer.sign_to_vec(&digest, &mut signature)?;
    let mut verifier = PkeyCtx::new(&key)?;
    verifier.verify_init()?;
    if !verifier.verify(&digest, &signature)? {
        // A fresh signature that does not verify means the library is broken: no floor.
        return Err(ErrorStack::get());
    }

    let cpu_before = procfs::sample("thread-self").ok();
    let started = Instant::now();
    let mut count = 0u64;
    while count == 0 || started.elapsed() < total {
        for _ in 0..BATCH {
            verifier.verify(&digest, &signature)?;
        }
        count += BATCH;
    }
    let wall = started.elapsed();
    let cpu = cpu_before
        .zip(procfs::sample("thread-self").ok())
        .map(|(before, after)| after.cpu().saturating_sub(before.cpu()))
        .filter(|cpu| !cpu.is_zero());
    let (spent, clock) = match cpu {
        Some(cpu) => (cpu, "thread_cpu"),
        None => (wall, "wall"),
    };
    let us = spent.as_secs_f64() * 1e6 / count as f64;
    Ok(Floor {
        openssl_p256_verify_us: us,
        verifies_per_sec: 1e6 / us,
        clock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_a_plausible_p256_verification_time() {
        let floor = measure(Duration::from_millis(200)).unwrap();
        // Anything from a fast desktop to a slow emulator, but never zero or absurd.
        assert!(
            (1.0..10_000.0).contains(&floor.openssl_p256_verify_us),
            "{floor:?}"
        );
        let product = floor.openssl_p256_verify_us * floor.verifies_per_sec;
        assert!((product - 1e6).abs() < 1.0, "{floor:?}");
    }
}
