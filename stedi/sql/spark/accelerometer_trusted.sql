-- accelerometer_trusted: phone readings of customers who consented.
--
-- Consent scope `reading` keeps readings taken at or after the customer's
-- shareWithResearchAsOfDate; `customer` keeps every reading of a consenting
-- customer. A record repeated exactly counts once; readings that differ only
-- in x/y/z are distinct and all stay.
--
-- Every input record, with the rule that leaves it out (filtered_by NULL: kept); a row
-- stands for `records` input records:
--   no_parent       no customer has this email
--   no_consent      the customer is not trusted
--   before_consent  taken before the consent date (scope `reading`)
--   duplicate       an exact repeat of a kept reading
WITH known_emails AS (SELECT DISTINCT email FROM customer_landing),
ruled AS (
  SELECT a.`user`, a.`timestamp`, a.x, a.y, a.z,
         CASE
           WHEN k.email IS NULL THEN 'no_parent'
           WHEN c.email IS NULL THEN 'no_consent'
           WHEN :consent_scope = 'reading' AND a.`timestamp` < c.shareWithResearchAsOfDate THEN 'before_consent'
         END AS rule
  FROM accelerometer_landing a
  LEFT JOIN known_emails k ON k.email = a.`user`
  LEFT JOIN customer_trusted c ON c.email = a.`user`
),
kept AS (
  -- Each kept reading once, with the number of identical records of it that landed.
  SELECT `user`, `timestamp`, x, y, z, count(*) AS copies
  FROM ruled
  WHERE rule IS NULL
  GROUP BY `user`, `timestamp`, x, y, z
)
-- A kept reading is kept once and its other copies are exact repeats; the records a rule leaves
-- out are only counted, so they are grouped by rule (grouping every reading would cost twice the time).
SELECT `user`, `timestamp`, x, y, z, NULL AS filtered_by, 1 AS records FROM kept
UNION ALL
SELECT `user`, `timestamp`, x, y, z, 'duplicate', copies - 1 FROM kept WHERE copies > 1
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, rule, count(*) FROM ruled WHERE rule IS NOT NULL GROUP BY rule
