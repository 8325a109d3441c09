"""The mutants: rule-level changes that the test suite must notice, one at a time.

Each mutant is one or more exact text replacements in the project, each of
whose `old` text must occur exactly once in its file: a mutant whose text has
gone (the file was rewritten) stops the run before anything is mutated, so
the list cannot rot unnoticed. `breaks` says, in the README's terms, which
rule the change breaks; `tests` are the test files run against it, the one
expected to catch it first (run_mutants.py runs them in this order and stops
at the first failure).

Stage SQL is mutated in stedi/sql/spark/ (and the landing statements in
stedi/landing.py, which writes them), the state machine in
stedi/aws/state_machine.py: the runner regenerates the derived files (the
DuckDB translations, the Glue script, the definition) after each mutation,
so the mutant runs on both engines and no test catches it only for a stale
generated file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Mutant:
    id: str
    breaks: str
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]


def mutant(id: str, breaks: str, path: str, old: str, new: str, tests: tuple[str, ...]) -> Mutant:
    return Mutant(id, breaks, (Edit(path, old, new),), tests)


# Which tests answer for what, sharpest first.
RULES = ("tests/test_gates_every_rule.py", "tests/test_rules.py", "tests/test_checks.py", "tests/test_generated.py",
         "tests/test_starter.py")
LANDING = ("tests/test_gates_every_rule.py", "tests/test_landing.py", "tests/test_generated.py")
CHECKS = ("tests/test_checks.py", "tests/test_gates_every_rule.py", "tests/test_rules.py", "tests/test_generated.py")
PUBLISH = ("tests/test_publish.py", "tests/test_faults_publish.py", "tests/test_cli.py")
FAULTS = ("tests/test_faults_publish.py", "tests/test_publish.py")
AWS_PUBLISH = ("tests/aws/test_aws_handlers.py",)
TRIGGER = ("tests/aws/test_aws_trigger.py", "tests/aws/test_gates_trigger.py")
STATE_MACHINE = ("tests/aws/test_aws_definition.py", "tests/aws/test_aws_state_machine.py")

SPARK_SQL = "stedi/sql/spark"
CT, AT, CC = f"{SPARK_SQL}/customer_trusted.sql", f"{SPARK_SQL}/accelerometer_trusted.sql", \
    f"{SPARK_SQL}/customer_curated.sql"
ST, ML = f"{SPARK_SQL}/step_trainer_trusted.sql", f"{SPARK_SQL}/machine_learning_curated.sql"

MUTANTS: tuple[Mutant, ...] = (
    # ---------------------------------------------------------------- stage SQL: customer_trusted
    mutant("ct-tie-consent-wins", "on a tie in lastUpdateDate the record with consent wins, not the one without",
           CT, "shareWithResearchAsOfDate DESC NULLS FIRST", "shareWithResearchAsOfDate DESC NULLS LAST", RULES),
    mutant("ct-oldest-record-decides", "a customer's oldest record decides, so a later record never revokes consent",
           CT, "ORDER BY lastUpdateDate DESC,", "ORDER BY lastUpdateDate ASC,", RULES),
    mutant("ct-no-consent-dropped", "a customer whose current record has no consent is trusted (CASE branch removed)",
           CT, "         WHEN shareWithResearchAsOfDate IS NULL THEN 'no_consent'\n", "", RULES),
    mutant("ct-second-record-kept", "a customer's second-newest record is kept too (comparison bound)",
           CT, "WHEN recency > 1 THEN 'superseded'", "WHEN recency > 2 THEN 'superseded'", RULES),
    # ---------------------------------------------------------------- stage SQL: accelerometer_trusted
    mutant("at-consent-instant-excluded", "a phone reading taken at the consent instant is left out (< became <=)",
           AT, "a.`timestamp` < c.shareWithResearchAsOfDate", "a.`timestamp` <= c.shareWithResearchAsOfDate", RULES),
    mutant("at-scopes-swapped", "consent scope `customer` filters readings by date and `reading` does not",
           AT, "WHEN :consent_scope = 'reading' AND", "WHEN :consent_scope = 'customer' AND", RULES),
    Mutant("at-repeat-key-without-z", "phone readings differing only in z count as repeats (duplicate key shortened)",
           (Edit(AT, "SELECT `user`, `timestamp`, x, y, z, count(*) AS copies",
                 "SELECT `user`, `timestamp`, x, y, min(z) AS z, count(*) AS copies"),
            Edit(AT, "GROUP BY `user`, `timestamp`, x, y, z\n", "GROUP BY `user`, `timestamp`, x, y\n")), RULES),
    mutant("at-duplicate-kept", "an exact repeat of a phone reading is kept (its rule's name removed)",
           AT, "x, y, z, 'duplicate', copies - 1", "x, y, z, NULL, copies - 1",
           RULES),
    mutant("at-no-parent-dropped", "a reading of no known customer is counted no_consent (CASE branch removed)",
           AT, "         WHEN k.email IS NULL THEN 'no_parent'\n", "", RULES),
    # ---------------------------------------------------------------- stage SQL: customer_curated
    mutant("cc-idle-customer-curated", "a consenting customer without trusted phone readings is curated",
           CC, "CASE WHEN r.`user` IS NULL THEN",
           "CASE WHEN r.`user` IS NULL AND c.shareWithResearchAsOfDate IS NULL THEN", RULES),
    # ---------------------------------------------------------------- stage SQL: step_trainer_trusted
    mutant("st-ambiguous-dropped", "a serial number of two curated customers keeps its readings (CASE branch removed)",
           ST, "         WHEN o.owner_count > 1 THEN 'ambiguous_owner'\n", "", RULES),
    mutant("st-owners-among-trusted", "owners are counted among trusted, not curated, customers",
           ST, "  FROM customer_curated\n  GROUP BY serialNumber", "  FROM customer_trusted\n  GROUP BY serialNumber",
           RULES),
    mutant("st-consent-instant-excluded", "a trainer reading taken at the consent instant is left out (< became <=)",
           ST, "s.sensorReadingTime < o.consent_date", "s.sensorReadingTime <= o.consent_date", RULES),
    Mutant("st-repeat-key-without-distance", "trainer readings differing only in distance count as repeats",
           (Edit(ST, "SELECT sensorReadingTime, serialNumber, distanceFromObject, count(*) AS copies",
                 "SELECT sensorReadingTime, serialNumber, min(distanceFromObject) AS distanceFromObject, "
                 "count(*) AS copies"),
            Edit(ST, "GROUP BY sensorReadingTime, serialNumber, distanceFromObject\n",
                 "GROUP BY sensorReadingTime, serialNumber\n")), RULES),
    mutant("st-no-consent-dropped", "readings of a non-consenting customer's trainer are counted no_trusted_readings",
           ST, "         WHEN t.serialNumber IS NULL THEN 'no_consent'\n", "", RULES),
    # ---------------------------------------------------------------- stage SQL: machine_learning_curated
    mutant("ml-timestamp-only-join", "a trainer reading is paired with any customer's phone at its instant "
           "(join key dropped: the course's 43,681)",
           ML, "ON a.`user` = c.email AND a.`timestamp` = s.sensorReadingTime",
           "ON a.`timestamp` = s.sensorReadingTime", RULES),
    mutant("ml-unpaired-kept", "a trainer reading with no phone reading at its instant is kept, its phone values empty",
           ML, "JOIN accelerometer_trusted a ON", "LEFT JOIN accelerometer_trusted a ON", RULES),
    mutant("ml-later-instants-paired", "a trainer reading is paired with the phone's later readings too (= became >=)",
           ML, "a.`timestamp` = s.sensorReadingTime", "a.`timestamp` >= s.sensorReadingTime", RULES),
    mutant("ml-birthday-published", "the ML table carries a personal column",
           ML, "a.`timestamp`, a.x, a.y, a.z\nFROM", "a.`timestamp`, a.x, a.y, a.z, c.birthDay\nFROM", RULES),
    # ---------------------------------------------------------------- landing (stedi/landing.py writes its SQL)
    mutant("la-wrong-type-z-unseen", "a reading whose z is not a number lands with z empty (CASE branch removed)",
           "stedi/landing.py", '        problems.append(f"WHEN {value} IS NOT NULL AND',
           '        if name != "z":\n            problems.append(f"WHEN {value} IS NOT NULL AND', LANDING),
    mutant("la-missing-distance-unseen", "a trainer reading without distanceFromObject lands with it empty",
           "stedi/landing.py",
           "        if required:\n            problems.append(",
           "        if required and name != \"distanceFromObject\":\n            problems.append(", LANDING),
    mutant("la-bigint-19-digits", "a 19-digit integer beyond BIGINT is typed (and lands empty) instead of rejected",
           "stedi/landing.py", '"BIGINT": "^-?[0-9]{1,18}$"', '"BIGINT": "^-?[0-9]{1,19}$"', LANDING),
    mutant("la-blank-string-plain", "a plain line with a blank required string is valid",
           "stedi/landing.py", "                complete.append(not_blank_plain(f\"record.`{name}`\"))\n",
           "                pass\n", LANDING),
    mutant("la-escaped-key-float-lands", "a fraction under a string field's key written with an escape lands, "
           "as text each engine writes differently", "stedi/landing.py",
           'f"OR ({key_escaped} AND {reads_as_float}))"', 'f"OR (false AND {reads_as_float}))"',
           ("tests/test_landing_bytes.py",)),
    # ---------------------------------------------------------------- checks (stedi/checks.py), each family
    mutant("ck-personal-list-short", "no_personal_columns lets a phone column through (its list shortened)",
           "stedi/checks.py", "'email', 'user', 'customername', 'phone', 'birthday'",
           "'email', 'user', 'customername', 'birthday'", CHECKS),
    mutant("ck-reason-list-short", "reason_known refuses the last reason of each source (its list shortened)",
           "stedi/checks.py", "_sql_list(SOURCE[source].reject_reasons)",
           "_sql_list(SOURCE[source].reject_reasons[:-1])", CHECKS),
    mutant("ck-reason-family-only", "reason_known accepts any reason of a known family, for any field",
           "stedi/checks.py", 'f"reason NOT IN ({_sql_list(SOURCE[source].reject_reasons)})"',
           "\"split_part(reason, ':', 1) NOT IN ('malformed_json', 'missing_field', 'wrong_type')\"", CHECKS),
    mutant("ck-rule-list-short", "rule_known refuses the first rule of each stage (its list shortened)",
           "stedi/checks.py", "_sql_list(stage.rules)", "_sql_list(stage.rules[1:])", CHECKS),
    mutant("ck-rule-of-any-stage", "rule_known accepts a rule of another stage",
           "stedi/checks.py", "_sql_list(stage.rules)", "_sql_list(tuple(r for s in STAGE_LIST for r in s.rules))",
           CHECKS),
    mutant("ck-zero-unchecked", "a check that counts violations passes whatever it counts",
           "stedi/checks.py", 'expected, passed = "0", actual == 0', 'expected, passed = "0", actual is not None',
           CHECKS),
    mutant("ck-recount-at-least", "a recount passes when the table holds more rows than it should (== became >=)",
           "stedi/checks.py", "consent_scope, schema))\n            expected, passed = str(wanted), actual == wanted",
           "consent_scope, schema))\n            expected, passed = str(wanted), actual >= wanted", CHECKS),
    mutant("ck-share-bound", "a run goes on with 30% of a source's lines rejected",
           "stedi/checks.py", "MAX_REJECTED_SHARE = 0.25", "MAX_REJECTED_SHARE = 0.3", CHECKS),
    mutant("ck-supplied-count-skipped", "an exact row count given with --expect is never checked",
           "stedi/checks.py", "if isinstance(expect, SuppliedCount) and check.table not in expected_counts:",
           "if isinstance(expect, SuppliedCount):", CHECKS),
    mutant("ck-recount-without-tie", "customer_trusted's recount forgets that a tie without consent revokes it",
           "stedi/checks.py",
           '"AND (newer.lastUpdateDate > l.lastUpdateDate OR (newer.lastUpdateDate = l.lastUpdateDate "\n'
           '                      "AND newer.shareWithResearchAsOfDate IS NULL))) "',
           '"AND (newer.lastUpdateDate > l.lastUpdateDate)) "', CHECKS),
    mutant("ck-recount-distinct-short", "accelerometer_trusted's recount takes readings differing in z for one",
           "stedi/checks.py", 'SELECT DISTINCT a."user", a."timestamp", a.x, a.y, a.z ',
           'SELECT DISTINCT a."user", a."timestamp", a.x, a.y ', CHECKS),
    mutant("ck-duplicates-columns-short", "no_exact_duplicates takes phone readings differing in z for repeats",
           "stedi/checks.py", """cols='"user", "timestamp", x, y, z'""", """cols='"user", "timestamp", x, y'""",
           CHECKS),
    mutant("ck-trainer-duplicates-columns-short", "no_exact_duplicates takes trainer readings differing in "
           "distance for repeats",
           "stedi/checks.py", 'cols="sensorReadingTime, serialNumber, distanceFromObject"',
           'cols="sensorReadingTime, serialNumber"', CHECKS),
    mutant("ck-pairs-without-z", "same_customer_pairs lets a pair through whose z is not the phone's",
           "stedi/checks.py", "AND a.x = m.x AND a.y = m.y AND a.z = m.z)", "AND a.x = m.x AND a.y = m.y)", CHECKS),
    mutant("ck-single-owner-bound", "single_owner lets a serial number of two curated customers through",
           "stedi/checks.py",
           '"(SELECT serialNumber FROM customer_curated GROUP BY serialNumber HAVING count(*) > 1)", Zero()),',
           '"(SELECT serialNumber FROM customer_curated GROUP BY serialNumber HAVING count(*) > 2)", Zero()),',
           CHECKS),
    mutant("ck-current-record-flipped", "is_current_record looks for older records instead of newer ones",
           "stedi/checks.py", "ON l.email = t.email AND l.lastUpdateDate > t.lastUpdateDate",
           "ON l.email = t.email AND l.lastUpdateDate < t.lastUpdateDate", CHECKS),
    mutant("ck-outside-consent-inclusive", "no_reading_outside_consent flags a phone reading at the consent instant",
           "stedi/checks.py", r'a.\"timestamp\" < c.shareWithResearchAsOfDate", Zero())',
           r'a.\"timestamp\" <= c.shareWithResearchAsOfDate", Zero())', CHECKS),
    mutant("ck-accounted-by-max", "records_accounted adds up only the largest rule's count",
           "stedi/checks.py", "(SELECT coalesce(sum(records), 0) FROM", "(SELECT coalesce(max(records), 0) FROM",
           CHECKS),
    mutant("ck-ml-recount-unpaired", "the ML recount counts one row per phone reading, not per pair",
           "stedi/checks.py", "coalesce(sum(s.readings * a.readings), 0)", "coalesce(sum(a.readings), 0)", CHECKS),
    # ---------------------------------------------------------------- the gates in stedi/pipeline.py
    mutant("pl-goes-on-after-customer-curated-fails", "a failed check at customer_curated does not stop the run",
           "stedi/pipeline.py", "            if stage_report.failures:\n                return",
           "            if stage_report.failures and stage != \"customer_curated\":\n                return", PUBLISH),
    mutant("pl-publishes-despite-step-trainer-failure", "a run whose step_trainer_trusted check failed is published",
           "stedi/pipeline.py", "            if report.failures:\n",
           "            if [f for f in report.failures if f.stage != \"step_trainer_trusted\"]:\n", PUBLISH),
    mutant("pl-failures-without-row-counts", "a wrong --expect row count does not count as a failure",
           "stedi/pipeline.py",
           "        return [result for result in self.checks if result.failed]\n\n    def manifest_entry",
           "        return [result for result in self.checks if result.failed and result.check != \"row_count\"]\n"
           "\n    def manifest_entry", PUBLISH),
    # ---------------------------------------------------------------- publishing (stedi/lake.py)
    Mutant("lk-manifest-written-in-place", "published.json is rewritten in place: a write that dies half-way "
           "leaves readers a broken manifest", (Edit(
               "stedi/lake.py",
               '        temporary = self.manifest_path.with_suffix(".json.tmp")\n'
               '        temporary.write_text(json.dumps(manifest, indent=2) + "\\n")\n'
               "        os.replace(temporary, self.manifest_path)\n",
               '        self.manifest_path.write_text(json.dumps(manifest, indent=2) + "\\n")\n'),), FAULTS),
    Mutant("lk-prune-before-rename", "older staging is deleted before the new manifest is in place", (Edit(
        "stedi/lake.py",
        "        os.replace(temporary, self.manifest_path)\n"
        "        self._prune(keep=kept_runs(manifest), oldest=oldest_kept(previous, manifest))\n",
        "        self._prune(keep=kept_runs(manifest), oldest=oldest_kept(previous, manifest))\n"
        "        os.replace(temporary, self.manifest_path)\n"),), FAULTS),
    mutant("lk-failed-run-pruned-at-once", "a failed run's staging is deleted by the next publish, however recent",
           "stedi/lake.py", "if folder.name not in keep and folder.name < oldest:", "if folder.name not in keep:",
           PUBLISH),
    mutant("lk-first-failed-run-pruned-at-once", "a run that failed before the first publish is deleted by it",
           "stedi/lake.py", 'return published_entries(manifest)[-1]["run_id"] if let_go else None',
           'return published_entries(manifest)[-1]["run_id"]', PUBLISH + AWS_PUBLISH),
    mutant("lk-keep-two", "two published runs are kept, not three",
           "stedi/lake.py", "KEEP_PUBLISHED = 3", "KEEP_PUBLISHED = 2", PUBLISH),
    # ---------------------------------------------------------------- publishing on AWS (stedi/aws/publish.py)
    Mutant("aw-prune-before-manifest", "runs are pruned before the manifest that drops them is written", (Edit(
        "stedi/aws/publish.py",
        "    previous, manifest = write_manifest(s3, bucket, entry)\n"
        "    pruned = prune_runs(s3, bucket, keep=kept_runs(manifest), oldest=oldest_kept(previous, manifest))\n",
        "    previous = read_manifest(s3, bucket)\n"
        "    upcoming = next_manifest(previous, entry)\n"
        "    pruned = prune_runs(s3, bucket, keep=kept_runs(upcoming), oldest=oldest_kept(previous, upcoming))\n"
        "    previous, manifest = write_manifest(s3, bucket, entry)\n"),), AWS_PUBLISH),
    mutant("aw-failed-run-pruned-at-once", "a failed run's staging is deleted by the next publish, however recent",
           "stedi/aws/publish.py", "if since is not None and written is not None and written > since:",
           "if False:", AWS_PUBLISH),
    Mutant("aw-manifest-before-tables", "the manifest names the new run before its tables are published", (Edit(
        "stedi/aws/publish.py",
        "    repoint_published_tables(glue, staging_database, published_database, run)\n"
        "    previous, manifest = write_manifest(s3, bucket, entry)\n",
        "    previous, manifest = write_manifest(s3, bucket, entry)\n"
        "    repoint_published_tables(glue, staging_database, published_database, run)\n"),), AWS_PUBLISH),
    mutant("aw-no-put-back", "a publish that Glue refuses half-way leaves the tables it repointed at the new run",
           "stedi/aws/publish.py", "unrestored = _put_back(glue, published_database, before, repointed)",
           "unrestored = []", AWS_PUBLISH),
    mutant("aw-history-forgotten", "each AWS publish forgets the runs published before it, and prunes them",
           "stedi/aws/publish.py", "manifest = next_manifest(previous, entry)",
           "manifest = next_manifest(None, entry)", AWS_PUBLISH),
    # ---------------------------------------------------------------- the run history on AWS (stedi/aws/history.py)
    mutant("aw-stopped-run-figures-forgotten", "a stopped or timed-out run records its own row and nothing it got "
           "through", "stedi/aws/history.py", "return _rows(run, state, outcome, step)",
           "return _rows(run, {}, outcome, step)", ("tests/aws/test_aws_run_end.py",)),
    Mutant("aw-execution-history-first-page", "a stopped run's execution history is read from its first page alone",
           (Edit("stedi/aws/history.py",
                 '    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):\n'
                 '        yield from page["events"]\n',
                 '    yield from sfn.get_execution_history(executionArn=execution_arn)["events"]\n'),),
           ("tests/aws/test_aws_run_end.py",)),
    # ---------------------------------------------------------------- Athena (stedi/aws/athena.py)
    mutant("aw-values-misread", "a stage's values, asked in one query, are read back against the wrong checks",
           "stedi/aws/athena.py", 'found = dict(zip(together, answers.pop(("row", together)), strict=True))',
           'found = dict(zip(reversed(together), answers.pop(("row", together)), strict=True))',
           ("tests/aws/test_aws_handlers.py",)),
    # ---------------------------------------------------------------- the trigger (stedi/aws/trigger.py)
    mutant("tr-name-time-dependent", "the execution name depends on when the batch is handled: a redelivered "
           "batch starts a second run",
           "stedi/aws/trigger.py", 'hashlib.sha256("\\n".join(sorted({u.event_id for u in uploads})).encode())',
           'hashlib.sha256(("\\n".join(sorted({u.event_id for u in uploads})) + datetime.now().isoformat()).encode())',
           TRIGGER),
    mutant("tr-name-order-dependent", "the execution name depends on the order of the batch's events",
           "stedi/aws/trigger.py", 'hashlib.sha256("\\n".join(sorted({u.event_id for u in uploads})).encode())',
           'hashlib.sha256("\\n".join(u.event_id for u in uploads).encode())', TRIGGER),
    mutant("tr-upload-at-start-runs-again", "an upload made the instant a run started starts another run "
           "(> became >=)",
           "stedi/aws/trigger.py", "upload.time > latest_start", "upload.time >= latest_start", TRIGGER),
    # ---------------------------------------------------------------- the state machine (stedi/aws/state_machine.py)
    mutant("sm-ml-check-uncaught", "a failed check of machine_learning_curated skips the alert (its Catch removed)",
           "stedi/aws/state_machine.py", '        "Catch": catch_all(failed_at),\n',
           '        **({"Catch": catch_all(failed_at)} if failed_at != "machine_learning_curated" else {}),\n',
           STATE_MACHINE),
    mutant("sm-landing-job-uncaught", "a failed landing job skips the alert (its Catch removed)",
           "stedi/aws/state_machine.py", '            "Catch": catch_all(stage.name),\n',
           '            **({} if stage.kind == TYPED else {"Catch": catch_all(stage.name)}),\n', STATE_MACHINE),
    mutant("sm-curated-checks-skipped", "customer_curated's job goes straight to the next stage: its checks never run",
           "stedi/aws/state_machine.py", '            "Next": check_name(stage),\n',
           '            "Next": check_name(stage) if stage.name != "customer_curated" else next_state,\n',
           STATE_MACHINE),
    mutant("sm-failed-check-passed-over", "a stage whose checks failed goes on to the next stage",
           "stedi/aws/state_machine.py",
           '"NumericGreaterThan": 0,\n                         "Next": checks_failed_name(stage)',
           '"NumericGreaterThan": 0,\n                         "Next": next_state', STATE_MACHINE),
)
