-- step_trainer_trusted: step trainer readings of curated customers.
--
-- A reading belongs to the customer whose current record carries its
-- serialNumber. The consent scope applies to sensorReadingTime as it does to
-- accelerometer timestamps. A serial number carried by more than one curated
-- customer has no single owner, so its readings are left out.
--
-- Every input record, with the rule that leaves it out (filtered_by NULL: kept); a row
-- stands for `records` identical input records:
--   no_parent            no customer has this serial number
--   no_consent           no trusted customer has it
--   no_trusted_readings  no curated customer has it
--   ambiguous_owner      more than one curated customer has it
--   before_consent       taken before the owner's consent date (scope `reading`)
--   duplicate            an exact repeat of a kept reading
WITH readings AS (
  -- Each distinct reading once, with the number of identical records of it that landed.
  SELECT sensorReadingTime, serialNumber, distanceFromObject, count(*) AS copies
  FROM step_trainer_landing
  GROUP BY sensorReadingTime, serialNumber, distanceFromObject
),
known_serials AS (SELECT DISTINCT serialNumber FROM customer_landing),
consenting_serials AS (SELECT DISTINCT serialNumber FROM customer_trusted),
owners AS (
  SELECT serialNumber, count(*) AS owner_count, max(shareWithResearchAsOfDate) AS consent_date
  FROM customer_curated
  GROUP BY serialNumber
),
ruled AS (
  SELECT r.sensorReadingTime, r.serialNumber, r.distanceFromObject, r.copies,
         CASE
           WHEN k.serialNumber IS NULL THEN 'no_parent'
           WHEN t.serialNumber IS NULL THEN 'no_consent'
           WHEN o.serialNumber IS NULL THEN 'no_trusted_readings'
           WHEN o.owner_count > 1 THEN 'ambiguous_owner'
           WHEN :consent_scope = 'reading' AND r.sensorReadingTime < o.consent_date THEN 'before_consent'
         END AS rule
  FROM readings r
  LEFT JOIN known_serials k ON k.serialNumber = r.serialNumber
  LEFT JOIN consenting_serials t ON t.serialNumber = r.serialNumber
  LEFT JOIN owners o ON o.serialNumber = r.serialNumber
)
-- A reading a rule leaves out stands for all its copies. A kept reading is kept once (part 1)
-- and its other copies are exact repeats (part 2).
SELECT sensorReadingTime, serialNumber, distanceFromObject,
       CASE WHEN part.n = 2 THEN 'duplicate' ELSE rule END AS filtered_by,
       CASE WHEN part.n = 2 THEN copies - 1 WHEN rule IS NULL THEN 1 ELSE copies END AS records
FROM ruled
JOIN (VALUES (1), (2)) AS part(n) ON part.n = 1 OR (rule IS NULL AND copies > 1)
