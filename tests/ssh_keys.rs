//! Every key type an approver may list (ed25519, ecdsa-sha2-nistp256, rsa with
//! rsa-sha2-512): keys made by `ssh-keygen`, the evidence hash signed with `ssh-keygen -Y
//! sign`, verified by cutover and cross-checked with `ssh-keygen -Y verify`. A signature by
//! another key of the same type, or over other evidence, is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use cutover::signoff::sshsig;

const HASH: &str = "3f9c0a5be1d24c7a8e6f1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60";
const OTHER_HASH: &str = "0f9c0a5be1d24c7a8e6f1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60";

fn run(cmd: &mut Command) -> std::process::Output {
    let o = cmd
        .output()
        .expect("ssh-keygen is needed for the SSH signature tests");
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A fresh key pair of `ssh-keygen -t TYPE` (and `-b BITS`), its public line.
fn keygen(dir: &Path, name: &str, args: &[&str]) -> (PathBuf, String) {
    let key = dir.join(name);
    run(Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-C", name])
        .args(args)
        .arg("-f")
        .arg(&key));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public)
}

/// `ssh-keygen -Y sign -n cutover` over `hash` as `--show-evidence --hash-only` prints it.
fn sign(dir: &Path, key: &Path, hash: &str, tag: &str) -> (PathBuf, String) {
    let file = dir.join(format!("{tag}.sha256"));
    std::fs::write(&file, sshsig::message(hash)).unwrap();
    run(Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "cutover", "-f"])
        .arg(key)
        .arg(&file));
    let sig = std::fs::read_to_string(format!("{}.sig", file.display())).unwrap();
    (file, sig)
}

/// What `ssh-keygen -Y verify` says of `sig_file` over `file` for `public`.
fn ssh_keygen_verifies(dir: &Path, public: &str, file: &Path, sig: &str) -> bool {
    let signers = dir.join("allowed_signers");
    std::fs::write(&signers, format!("approver {public}")).unwrap();
    let sig_file = dir.join("check.sig");
    std::fs::write(&sig_file, sig).unwrap();
    Command::new("ssh-keygen")
        .args(["-Y", "verify", "-n", "cutover", "-I", "approver", "-f"])
        .arg(&signers)
        .arg("-s")
        .arg(&sig_file)
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn each_supported_key_type_verifies_and_forgeries_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], &str); 3] = [
        ("ed25519", &["-t", "ed25519"], "ssh-ed25519 "),
        (
            "ecdsa",
            &["-t", "ecdsa", "-b", "256"],
            "ecdsa-sha2-nistp256 ",
        ),
        ("rsa", &["-t", "rsa", "-b", "3072"], "ssh-rsa "),
    ];
    for (kind, args, prefix) in cases {
        let dir = tmp.path().join(kind);
        std::fs::create_dir_all(&dir).unwrap();
        let (key, public) = keygen(&dir, "approver", args);
        assert!(public.starts_with(prefix), "{kind}: {public}");
        let (other_key, other_public) = keygen(&dir, "someone-else", args);

        let (file, good) = sign(&dir, &key, HASH, "evidence");
        if kind == "rsa" {
            // ssh-keygen signs with rsa-sha2-512 for RSA keys.
            let parsed = ssh_key::SshSig::from_pem(good.trim().as_bytes()).unwrap();
            assert_eq!(
                parsed.algorithm().as_str(),
                "rsa-sha2-512",
                "{kind}: {good}"
            );
        }
        assert_eq!(sshsig::verify(&public, &good, HASH), Ok(()), "{kind}");
        assert!(ssh_keygen_verifies(&dir, &public, &file, &good), "{kind}");

        // Another key of the same type: refused here and by ssh-keygen.
        let (_, by_other) = sign(&dir, &other_key, HASH, "other");
        let why = sshsig::verify(&public, &by_other, HASH).unwrap_err();
        assert!(why.contains("another key"), "{kind}: {why}");
        assert!(!ssh_keygen_verifies(&dir, &public, &file, &by_other));
        // The other key's own signature is good for the other key: the refusal is the key's.
        assert_eq!(sshsig::verify(&other_public, &by_other, HASH), Ok(()));

        // The right key over other evidence.
        let (_, over_other) = sign(&dir, &key, OTHER_HASH, "altered");
        let why = sshsig::verify(&public, &over_other, HASH).unwrap_err();
        assert!(why.contains("does not cover"), "{kind}: {why}");
        assert!(!ssh_keygen_verifies(&dir, &public, &file, &over_other));

        // A signature whose bytes were altered after signing.
        let mut raw = ssh_key::SshSig::from_pem(good.trim().as_bytes())
            .unwrap()
            .signature_bytes()
            .to_vec();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let parsed = ssh_key::SshSig::from_pem(good.trim().as_bytes()).unwrap();
        let tampered = ssh_key::SshSig::new(
            parsed.public_key().clone(),
            parsed.namespace(),
            parsed.hash_alg(),
            ssh_key::Signature::new(parsed.algorithm(), raw).unwrap(),
        )
        .unwrap()
        .to_pem(ssh_key::LineEnding::LF)
        .unwrap();
        assert!(
            sshsig::verify(&public, &tampered, HASH).is_err(),
            "{kind}: a tampered signature verified"
        );
    }
}
