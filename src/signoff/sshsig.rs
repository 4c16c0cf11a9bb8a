//! SSH signatures over the evidence hash, as `ssh-keygen -Y sign -n cutover FILE` makes
//! them (the SSHSIG format) and `ssh-keygen -Y verify` checks them.

use ssh_key::{PublicKey, SshSig};

/// The namespace approvers sign in: a signature made for anything else does not count here.
pub const NAMESPACE: &str = "cutover";

/// What an approver signs: the evidence hash as `cutover sign --show-evidence --hash-only`
/// prints it (one line).
pub fn message(evidence_sha256: &str) -> String {
    format!("{evidence_sha256}\n")
}

/// The armored signature in `path`, as every entry point reads it (`cutover sign
/// --signature`, `run --signature`, the gate dialog's Signature field).
pub fn read(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("the signature file {} cannot be read: {e}", path.display()))
}

/// Whether `signature` (armored) is `public_key`'s signature over this evidence hash, in
/// the `cutover` namespace. The message may be the hash with or without its line end.
pub fn verify(public_key: &str, signature: &str, evidence_sha256: &str) -> Result<(), String> {
    let key = PublicKey::from_openssh(public_key.trim())
        .map_err(|e| format!("the runbook's ssh_key cannot be read: {e}"))?;
    let sig = SshSig::from_pem(signature.trim().as_bytes())
        .map_err(|e| format!("the signature is not an SSH signature (ssh-keygen -Y sign): {e}"))?;
    if sig.namespace() != NAMESPACE {
        return Err(format!(
            "the signature is for namespace '{}', not '{NAMESPACE}' (ssh-keygen -Y sign -n {NAMESPACE})",
            sig.namespace()
        ));
    }
    if key.key_data() != sig.public_key() {
        return Err("the signature was made with another key than the runbook lists".into());
    }
    let with_newline = message(evidence_sha256);
    for msg in [with_newline.as_str(), evidence_sha256] {
        if key.verify(NAMESPACE, msg.as_bytes(), &sig).is_ok() {
            return Ok(());
        }
    }
    Err(format!(
        "the signature does not cover evidence {}… (signed something else: another or an altered hash)",
        super::short(evidence_sha256)
    ))
}
