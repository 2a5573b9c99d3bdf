"""Writes a small city database in ip-location-db's flat layout (country_code, state1, city),
the layout of its dbip-city and geolite2-city files, for the tests: MaxMind's own test
databases cover the GeoIP2 layout only. Run by `scripts/stack.sh ensure-geoip`.

    flat_city_test.py OUT.mmdb
"""

import sys

from mmdb_writer import MMDBWriter
from netaddr import IPSet

# The same addresses as MaxMind's test databases, so that both layouts are checked alike.
RECORDS = {
    "81.2.69.142/31": {"country_code": "GB", "state1": "England", "city": "London"},
    "89.160.20.112/28": {"country_code": "SE", "state1": "Östergötland", "city": "Linköping"},
    "2a02:cf40::/29": {"country_code": "NO", "state1": "Oslo", "city": "Oslo"},
}

writer = MMDBWriter(
    ip_version=6,
    ipv4_compatible=True,
    database_type="ip-location-db-flat-city-test",
    languages=["en"],
    description={"en": "Test records in ip-location-db's flat city layout"},
)
for network, record in RECORDS.items():
    writer.insert_network(IPSet([network]), record)
writer.to_db_file(sys.argv[1])
