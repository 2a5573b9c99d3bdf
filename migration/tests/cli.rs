//! The migration binary without `DATABASE_URL` reads the layered settings, and a wrong one
//! stops it with one line naming the key (sea-orm-cli's own CLI would panic instead).

#[test]
fn without_database_url_a_wrong_setting_stops_the_migration_cli_with_one_line_naming_the_key() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_migration"))
        .arg("status")
        .env_remove("DATABASE_URL")
        .env("APP_CONFIG_DIR", "/nonexistent")
        .env("APP__DATABASE__URL", "mysql://app:secret@db/analytics")
        .output()
        .expect("run the migration binary");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("database.url"), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("secret"),
        "{stderr}"
    );
}
