#!/usr/bin/env python3
"""validate_sarif.py FILE N: checks that FILE is a SARIF 2.1.0 log, as the
OASIS spec and code-scanning uploaders require, with exactly N results:
version and runs; tool.driver.name and rules with unique ids and help text;
each result's ruleId names a rule at its ruleIndex, level is valid, message
has text, and every location has an artifact uri and a region with
1-based startLine/startColumn not after endLine/endColumn."""
import json
import sys


def fail(msg: str) -> None:
    print("validate_sarif:", msg)
    sys.exit(1)


def check_location(loc: dict, where: str) -> None:
    phys = loc.get("physicalLocation")
    if not isinstance(phys, dict):
        fail(f"{where}: no physicalLocation")
    uri = phys.get("artifactLocation", {}).get("uri")
    if not isinstance(uri, str) or not uri:
        fail(f"{where}: no artifactLocation.uri")
    region = phys.get("region")
    if region is None:
        return
    sl, sc = region.get("startLine"), region.get("startColumn")
    if not (isinstance(sl, int) and sl >= 1 and isinstance(sc, int) and sc >= 1):
        fail(f"{where}: bad startLine/startColumn {region}")
    el, ec = region.get("endLine", sl), region.get("endColumn", sc)
    if (el, ec) < (sl, sc):
        fail(f"{where}: region ends before it starts {region}")


def main() -> None:
    log = json.load(open(sys.argv[1]))
    want = int(sys.argv[2])
    if log.get("version") != "2.1.0":
        fail("version is not 2.1.0")
    if "sarif-2.1.0" not in log.get("$schema", ""):
        fail("$schema does not name SARIF 2.1.0")
    runs = log.get("runs")
    if not isinstance(runs, list) or len(runs) != 1:
        fail("expected one run")
    run = runs[0]
    driver = run.get("tool", {}).get("driver", {})
    if driver.get("name") != "flowc":
        fail("tool.driver.name is not flowc")
    rules = driver.get("rules", [])
    ids = [r.get("id") for r in rules]
    if len(set(ids)) != len(ids) or not all(ids):
        fail("rule ids are missing or not unique")
    for r in rules:
        if not r.get("shortDescription", {}).get("text") or not r.get("help", {}).get("text"):
            fail(f"rule {r.get('id')} lacks shortDescription or help text")
    results = run.get("results")
    if not isinstance(results, list):
        fail("results is not a list")
    if len(results) != want:
        fail(f"{len(results)} results, expected {want}")
    for i, res in enumerate(results):
        rid, index = res.get("ruleId"), res.get("ruleIndex")
        if rid not in ids or ids[index] != rid:
            fail(f"result {i}: ruleId {rid} does not match rules[{index}]")
        if res.get("level") not in ("none", "note", "warning", "error"):
            fail(f"result {i}: bad level {res.get('level')}")
        if not res.get("message", {}).get("text"):
            fail(f"result {i}: message has no text")
        locs = res.get("locations", [])
        if not locs and rid != "FL0005":
            fail(f"result {i}: no locations")
        for loc in locs + res.get("relatedLocations", []):
            check_location(loc, f"result {i}")
    print(f"validate_sarif: valid SARIF 2.1.0 with {len(results)} result(s)")


if __name__ == "__main__":
    main()
