//! Where a client address is, from an IP-to-location database in MaxMind's format
//! (`analytics.geoip_database`): the ISO 3166-1 alpha-2 country, and the region and city when
//! the database has them. Only the answer travels with the event; the address stays here.
//!
//! Two record layouts are read: GeoIP2/GeoLite2 (`country.iso_code`, `subdivisions[0].iso_code`,
//! `city.names.en`) and ip-location-db's flat one (`country_code`, `state1`, `city`). Private,
//! loopback and link-local addresses are not looked up; an address the database does not know,
//! or a record that makes no sense, gives no place (never an error: the event is kept).
//!
//! The whole file is read into memory (a few MB for a country database), so replacing the file
//! while it is open is safe; [`GeoIp::reload_if_replaced`] swaps in a replaced file, and the
//! producer calls it every [`RELOAD_EVERY`].

use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use event::page_view::{check_country, check_text, MAX_CITY, MAX_REGION};
use maxminddb::Reader;
use serde::Deserialize;
use settings::GeoIpDatabase;

/// How often the producer checks whether the database file was replaced.
pub const RELOAD_EVERY: Duration = Duration::from_secs(60);

/// What the database says about an address; all `None` when it says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    #[error("invalid setting {}: not set; give the path of an .mmdb IP-to-location database (make up fetches one: scripts/stack.sh ensure-geoip) or \"off\"", GeoIpDatabase::KEY)]
    Unset,
    #[error("invalid setting {}: cannot read {}: {reason}", GeoIpDatabase::KEY, path.display())]
    Unreadable { path: PathBuf, reason: String },
}

/// The lookup, or nothing when `analytics.geoip_database` is `off`.
pub struct GeoIp {
    database: Option<Database>,
}

struct Database {
    path: PathBuf,
    reader: RwLock<Arc<Reader<Vec<u8>>>>,
    /// The file the reader was read from, to see when it is replaced.
    stamp: Mutex<Stamp>,
}

/// What tells one file apart from its replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    modified: i64,
    modified_ns: i64,
    len: u64,
}

impl GeoIp {
    /// Opens the database the setting names; `off` opens none.
    pub fn open(setting: &GeoIpDatabase) -> Result<Self, GeoIpError> {
        let path = match setting {
            GeoIpDatabase::Unset => return Err(GeoIpError::Unset),
            GeoIpDatabase::Off => return Ok(GeoIp { database: None }),
            GeoIpDatabase::File(path) => path,
        };
        let (reader, stamp) = read(path)?;
        describe(path, &reader);
        Ok(GeoIp {
            database: Some(Database {
                path: path.clone(),
                reader: RwLock::new(Arc::new(reader)),
                stamp: Mutex::new(stamp),
            }),
        })
    }

    /// Where `ip` is, as far as the database knows.
    pub fn locate(&self, ip: IpAddr) -> Place {
        let Some(database) = &self.database else {
            return Place::default();
        };
        if !is_public(ip) {
            return Place::default();
        }
        let reader = match database.reader.read() {
            Ok(reader) => Arc::clone(&reader),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        let record = reader.lookup(ip).and_then(|found| found.decode::<Record>());
        match record {
            Ok(Some(record)) => record.place(),
            Ok(None) => Place::default(),
            Err(_) => {
                // The reader's error is not logged: "invalid input" names the address.
                metrics::counter!("pageviews_geoip_errors_total").increment(1);
                Place::default()
            }
        }
    }

    /// Reads the file again if it was replaced since it was read; a file that does not read
    /// (still being written, say) leaves the current one in use. `Ok(true)` when swapped.
    pub fn reload_if_replaced(&self) -> Result<bool, GeoIpError> {
        let Some(database) = &self.database else {
            return Ok(false);
        };
        let unreadable = |e: std::io::Error| GeoIpError::Unreadable {
            path: database.path.clone(),
            reason: e.to_string(),
        };
        let now = stamp_of(&database.path).map_err(unreadable)?;
        let mut stamp = database.stamp.lock().unwrap_or_else(|p| p.into_inner());
        if *stamp == now {
            return Ok(false);
        }
        let (reader, read_stamp) = read(&database.path)?;
        describe(&database.path, &reader);
        *database.reader.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(reader);
        *stamp = read_stamp;
        Ok(true)
    }
}

/// Reads and parses the file, with the stamp it had.
fn read(path: &Path) -> Result<(Reader<Vec<u8>>, Stamp), GeoIpError> {
    let unreadable = |reason: String| GeoIpError::Unreadable {
        path: path.to_owned(),
        reason,
    };
    let stamp = stamp_of(path).map_err(|e| unreadable(e.to_string()))?;
    let reader = Reader::open_readfile(path).map_err(|e| unreadable(e.to_string()))?;
    Ok((reader, stamp))
}

fn stamp_of(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    Ok(Stamp {
        inode: meta.ino(),
        modified: meta.mtime(),
        modified_ns: meta.mtime_nsec(),
        len: meta.len(),
    })
}

/// Says which database is in use and how old it is (`/metrics` shows its build time too).
fn describe(path: &Path, reader: &Reader<Vec<u8>>) {
    let built = reader.metadata().build_epoch;
    metrics::gauge!("pageviews_geoip_database_build_time_seconds").set(built as f64);
    let built = chrono::DateTime::from_timestamp(built as i64, 0)
        .map_or_else(|| "?".to_owned(), |t| t.date_naive().to_string());
    tracing::info!(
        path = %path.display(),
        kind = %reader.metadata().database_type,
        built,
        "IP-to-location database loaded"
    );
}

/// Whether an address can be anywhere on a map: not private, loopback, link-local,
/// unspecified or broadcast (those would give a wrong country or none).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local())
        }
    }
}

/// A record in either layout; what it does not have is absent.
#[derive(Deserialize)]
struct Record<'a> {
    /// GeoIP2: `{"iso_code": "GB", ...}`.
    #[serde(borrow, default)]
    country: Option<Coded<'a>>,
    /// ip-location-db: `"GB"`.
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    /// GeoIP2: the most general first (`ENG` of `GB`).
    #[serde(borrow, default)]
    subdivisions: Option<Vec<Coded<'a>>>,
    /// ip-location-db's city files: the region's name.
    #[serde(borrow, default)]
    state1: Option<&'a str>,
    #[serde(borrow, default)]
    city: Option<City<'a>>,
}

#[derive(Deserialize)]
struct Coded<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

/// GeoIP2's city is `{"names": {"en": ...}}`; ip-location-db's is the name.
#[derive(Deserialize)]
#[serde(untagged)]
enum City<'a> {
    Name(&'a str),
    Names {
        #[serde(borrow)]
        names: Names<'a>,
    },
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

impl Record<'_> {
    /// The place, each part kept only if it is well-formed (a database is input too).
    fn place(&self) -> Place {
        let country = self
            .country
            .as_ref()
            .and_then(|c| c.iso_code)
            .or(self.country_code)
            .filter(|c| check_country(c).is_ok());
        let Some(country) = country else {
            return Place::default();
        };
        let subdivision = self.subdivisions.as_ref().and_then(|s| s.first()?.iso_code);
        let region = match subdivision {
            Some(code) => Some(format!("{country}-{code}")),
            None => self.state1.map(str::to_owned),
        };
        let city = match &self.city {
            Some(City::Name(name)) => Some(*name),
            Some(City::Names { names }) => names.en,
            None => None,
        };
        let fits = |text: &String, max| !text.is_empty() && check_text("", text, max).is_ok();
        Place {
            country: Some(country.to_owned()),
            region: region.filter(|r| fits(r, MAX_REGION)),
            city: city.map(str::to_owned).filter(|c| fits(c, MAX_CITY)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(database: GeoIpDatabase) -> GeoIp {
        GeoIp::open(&database).expect("the database opens")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn place(country: &str, region: &str, city: &str) -> Place {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Place {
            country: some(country),
            region: some(region),
            city: some(city),
        }
    }

    #[test]
    fn the_real_country_database_places_public_addresses_in_their_country() {
        let geo = open(testkit::country_database());
        assert_eq!(geo.locate(ip("8.8.8.8")), place("US", "", ""));
        assert_eq!(geo.locate(ip("2001:4860:4860::8888")), place("US", "", ""));
        assert_eq!(
            geo.locate(ip("193.0.6.139")),
            place("NL", "", ""),
            "RIPE NCC"
        );
    }

    #[test]
    fn a_city_database_gives_the_region_as_iso_3166_2_and_the_city_in_english() {
        let geo = open(testkit::city_test_database());
        assert_eq!(
            geo.locate(ip("81.2.69.142")),
            place("GB", "GB-ENG", "London")
        );
        assert_eq!(
            geo.locate(ip("89.160.20.112")),
            place("SE", "SE-E", "Linköping")
        );
        assert_eq!(
            geo.locate(ip("216.160.83.56")),
            place("US", "US-WA", "Milton")
        );
        // Known to the database as a country only.
        let country_only = open(GeoIpDatabase::File(
            testkit::geoip_dir().join("test/GeoIP2-Country-Test.mmdb"),
        ));
        assert_eq!(country_only.locate(ip("81.2.69.142")), place("GB", "", ""));
    }

    #[test]
    fn the_flat_city_layout_gives_the_regions_name_and_the_city() {
        let geo = open(GeoIpDatabase::File(
            testkit::geoip_dir().join("test/flat-city-test.mmdb"),
        ));
        assert_eq!(
            geo.locate(ip("81.2.69.142")),
            place("GB", "England", "London")
        );
        assert_eq!(
            geo.locate(ip("89.160.20.112")),
            place("SE", "Östergötland", "Linköping")
        );
        assert_eq!(geo.locate(ip("2a02:cf40::1")), place("NO", "Oslo", "Oslo"));
        assert_eq!(geo.locate(ip("8.8.8.8")), Place::default(), "not in it");
    }

    #[test]
    fn private_loopback_and_unknown_addresses_have_no_place() {
        let geo = open(testkit::city_test_database());
        for address in [
            "10.1.2.3",
            "192.168.0.7",
            "127.0.0.1",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "0.0.0.0",
            "203.0.113.77",
        ] {
            assert_eq!(geo.locate(ip(address)), Place::default(), "{address}");
        }
        let off = open(GeoIpDatabase::Off);
        assert_eq!(off.locate(ip("81.2.69.142")), Place::default());
    }

    #[test]
    fn an_unset_missing_or_unreadable_database_is_refused_naming_the_setting() {
        let unset = GeoIp::open(&GeoIpDatabase::Unset).err().expect("refused");
        let dir = std::env::temp_dir().join(format!("geoip-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a folder");
        let garbage = dir.join("not.mmdb");
        std::fs::write(&garbage, b"not a database").expect("written");
        let missing = GeoIp::open(&GeoIpDatabase::File(dir.join("missing.mmdb")))
            .err()
            .expect("refused");
        let unreadable = GeoIp::open(&GeoIpDatabase::File(garbage))
            .err()
            .expect("refused");
        for e in [unset, missing, unreadable] {
            let line = e.to_string();
            assert!(
                line.starts_with("invalid setting analytics.geoip_database: ")
                    && !line.contains('\n'),
                "{line}"
            );
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_replaced_database_file_is_read_again_and_a_broken_one_keeps_the_last() {
        let dir = std::env::temp_dir().join(format!("geoip-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a folder");
        let live = dir.join("live.mmdb");
        let test = testkit::geoip_dir().join("test");
        std::fs::copy(test.join("GeoIP2-Country-Test.mmdb"), &live).expect("copied");
        let geo = open(GeoIpDatabase::File(live.clone()));
        assert_eq!(geo.reload_if_replaced().ok(), Some(false), "unchanged");
        assert_eq!(geo.locate(ip("81.2.69.142")).city, None);

        let next = dir.join("next.mmdb");
        std::fs::copy(test.join("GeoIP2-City-Test.mmdb"), &next).expect("copied");
        std::fs::rename(&next, &live).expect("moved into place");
        assert_eq!(geo.reload_if_replaced().ok(), Some(true), "replaced");
        assert_eq!(
            geo.locate(ip("81.2.69.142")).city.as_deref(),
            Some("London")
        );

        std::fs::write(&next, b"half a file").expect("written");
        std::fs::rename(&next, &live).expect("moved into place");
        assert!(
            geo.reload_if_replaced().is_err(),
            "a broken file is reported"
        );
        assert_eq!(
            geo.locate(ip("81.2.69.142")).city.as_deref(),
            Some("London"),
            "and the last good one stays in use"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
