//! A complete runbook around one entity, on SQLite files in the scratch folder: every step
//! of a cutover (backup → unfreeze), one counts check and a one-approver gate. Suites that
//! feed one damaged file through the whole run share it and vary only the entity and its
//! target table.

/// The runbook named `name` moving `entity` (its `[entities.…]` tables, as TOML) into a
/// table whose DDL is `sqlite_ddl` / `postgres_ddl`.
pub fn runbook(name: &str, entity: &str, sqlite_ddl: &str, postgres_ddl: &str) -> String {
    format!(
        r#"[runbook]
name = "{name}"

[vars]
extract_dir = "extract"
legacy_url = ""
staging_url = "sqlite://staging.db"
production_url = "sqlite://production.db"
backup_dir = "backups"

[environments.legacy]
url = "${{legacy_url}}"

[environments.staging]
url = "${{staging_url}}"
reset = true

[environments.production]
url = "${{production_url}}"
production = true

{entity}[[checks]]
kind = "counts"

[gates.go]
title = "Go / no-go"
quorum = 1
roles = ["lead"]
approvers = [{{ name = "Lead", role = "lead" }}]
{STEPS}
[rollback]
restore_backup = true
reopen_legacy = true

[schema]
sqlite = """
{sqlite_ddl}
"""
postgres = """
{postgres_ddl}
"""
"#
    )
}

/// The nine steps of a cutover, each on its environment.
const STEPS: &str = r#"
[[steps]]
id = "backup"
kind = "backup"
env = "production"

[[steps]]
id = "freeze"
kind = "freeze"
env = "legacy"

[[steps]]
id = "extract"
kind = "extract"
env = "legacy"

[[steps]]
id = "dry_run"
kind = "dry_run"
env = "staging"

[[steps]]
id = "validate"
kind = "validate"
env = "staging"

[[steps]]
id = "sign_off"
kind = "sign_off"
gate = "go"

[[steps]]
id = "load"
kind = "load"
env = "production"

[[steps]]
id = "verify"
kind = "verify"
env = "production"

[[steps]]
id = "unfreeze"
kind = "unfreeze"
env = "production"
"#;
