-- step_trainer_trusted: step trainer readings of curated customers.
--
-- A reading belongs to the customer whose current record carries its
-- serialNumber. The consent scope applies to sensorReadingTime as it does to
-- accelerometer timestamps. A serial number carried by more than one curated
-- customer has no single owner, so its readings are left out.
--
-- Every input record, with the rule that leaves it out (filtered_by NULL: kept):
--   no_parent            no customer has this serial number
--   no_consent           no trusted customer has it
--   no_trusted_readings  no curated customer has it
--   ambiguous_owner      more than one curated customer has it
--   before_consent       taken before the owner's consent date (scope `reading`)
--   duplicate            an exact repeat of a kept reading
WITH readings AS (
  SELECT sensorReadingTime, serialNumber, distanceFromObject,
    row_number() OVER (
      PARTITION BY sensorReadingTime, serialNumber, distanceFromObject ORDER BY source_file
    ) AS copy_number
  FROM step_trainer_landing
),
known_serials AS (SELECT DISTINCT serialNumber FROM customer_landing),
consenting_serials AS (SELECT DISTINCT serialNumber FROM customer_trusted),
owners AS (
  SELECT serialNumber, count(*) AS owner_count, max(shareWithResearchAsOfDate) AS consent_date
  FROM customer_curated
  GROUP BY serialNumber
)
SELECT r.sensorReadingTime, r.serialNumber, r.distanceFromObject,
       CASE
         WHEN k.serialNumber IS NULL THEN 'no_parent'
         WHEN t.serialNumber IS NULL THEN 'no_consent'
         WHEN o.serialNumber IS NULL THEN 'no_trusted_readings'
         WHEN o.owner_count > 1 THEN 'ambiguous_owner'
         WHEN :consent_scope = 'reading' AND r.sensorReadingTime < o.consent_date THEN 'before_consent'
         WHEN r.copy_number > 1 THEN 'duplicate'
       END AS filtered_by
FROM readings r
LEFT JOIN known_serials k ON k.serialNumber = r.serialNumber
LEFT JOIN consenting_serials t ON t.serialNumber = r.serialNumber
LEFT JOIN owners o ON o.serialNumber = r.serialNumber
