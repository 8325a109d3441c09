-- step_trainer_trusted: step trainer readings of curated customers.
--
-- A reading belongs to the customer whose current record carries its
-- serialNumber. The consent scope applies to sensorReadingTime as it does to
-- accelerometer timestamps. A serial number carried by more than one curated
-- customer has no single owner, so its readings are left out.
--
-- Every input record, with the rule that leaves it out (filtered_by NULL: kept); a row
-- stands for `records` input records:
--   no_parent            no customer has this serial number
--   no_consent           no trusted customer has it
--   no_trusted_readings  no curated customer has it
--   ambiguous_owner      more than one curated customer has it
--   before_consent       taken before the owner's consent date (scope `reading`)
--   duplicate            an exact repeat of a kept reading
WITH known_serials AS (SELECT DISTINCT serialNumber FROM customer_landing),
consenting_serials AS (SELECT DISTINCT serialNumber FROM customer_trusted),
owners AS (
  SELECT serialNumber, count(*) AS owner_count, max(shareWithResearchAsOfDate) AS consent_date
  FROM customer_curated
  GROUP BY serialNumber
),
ruled AS (
  SELECT s.sensorReadingTime, s.serialNumber, s.distanceFromObject,
         CASE
           WHEN k.serialNumber IS NULL THEN 'no_parent'
           WHEN t.serialNumber IS NULL THEN 'no_consent'
           WHEN o.serialNumber IS NULL THEN 'no_trusted_readings'
           WHEN o.owner_count > 1 THEN 'ambiguous_owner'
           WHEN :consent_scope = 'reading' AND s.sensorReadingTime < o.consent_date THEN 'before_consent'
         END AS rule
  FROM step_trainer_landing s
  LEFT JOIN known_serials k ON k.serialNumber = s.serialNumber
  LEFT JOIN consenting_serials t ON t.serialNumber = s.serialNumber
  LEFT JOIN owners o ON o.serialNumber = s.serialNumber
),
kept AS (
  -- Each kept reading once, with the number of identical records of it that landed.
  SELECT sensorReadingTime, serialNumber, distanceFromObject, count(*) AS copies
  FROM ruled
  WHERE rule IS NULL
  GROUP BY sensorReadingTime, serialNumber, distanceFromObject
)
-- A kept reading is kept once and its other copies are exact repeats; the records a rule leaves
-- out are only counted, so they are grouped by rule (grouping every reading would cost twice the time).
SELECT sensorReadingTime, serialNumber, distanceFromObject, NULL AS filtered_by, 1 AS records FROM kept
UNION ALL
SELECT sensorReadingTime, serialNumber, distanceFromObject, 'duplicate', copies - 1 FROM kept WHERE copies > 1
UNION ALL
SELECT NULL, NULL, NULL, rule, count(*) FROM ruled WHERE rule IS NOT NULL GROUP BY rule
