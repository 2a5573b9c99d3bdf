//! docker-compose.yaml runs the same Apache Kafka as the local stack: the version pinned in
//! scripts/kafka/pom.xml and every setting of scripts/kafka/broker.properties. (Its schema is
//! checked by `make test` with check-jsonschema.)

use std::path::PathBuf;

fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `auto.create.topics.enable` → `KAFKA_AUTO_CREATE_TOPICS_ENABLE`, as the apache/kafka image reads it.
fn env_name(key: &str) -> String {
    format!("KAFKA_{}", key.replace('.', "_").to_uppercase())
}

#[test]
fn compose_pins_the_kafka_version_of_the_local_stack() {
    let pom = read("scripts/kafka/pom.xml");
    let version = pom
        .split("<kafka.version>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("kafka.version in the pom");
    let compose = read("docker-compose.yaml");
    assert!(
        compose.contains(&format!("image: apache/kafka:{version}\n")),
        "docker-compose.yaml should run apache/kafka:{version}"
    );
}

#[test]
fn compose_sets_every_shared_broker_setting_to_the_same_value() {
    let compose = read("docker-compose.yaml");
    let shared = read("scripts/kafka/broker.properties");
    let settings: Vec<(&str, &str)> = shared
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once('=').expect("key=value"))
        .collect();
    assert!(settings.len() >= 4, "{settings:?}");
    for (key, value) in settings {
        let name = env_name(key);
        let line = compose
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("docker-compose.yaml does not set {name} ({key})"));
        assert_eq!(
            line.trim().trim_matches('"'),
            value,
            "{name} in docker-compose.yaml and {key} in broker.properties differ"
        );
    }
}

#[test]
fn compose_keeps_kafka_data_in_its_volume() {
    let compose = read("docker-compose.yaml");
    assert!(compose.contains("KAFKA_LOG_DIRS: /var/lib/kafka/data"));
    assert!(compose.contains("kafka-data:/var/lib/kafka/data"));
    assert_eq!(
        compose.matches("build:").count(),
        1,
        "one image built for both binaries"
    );
}
