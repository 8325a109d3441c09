-- accelerometer_trusted: phone readings of customers who consented.
--
-- Consent scope `reading` keeps readings taken at or after the customer's
-- shareWithResearchAsOfDate; `customer` keeps every reading of a consenting
-- customer. A record repeated exactly counts once; readings that differ only
-- in x/y/z are distinct and all stay.
--
-- Every input record, with the rule that leaves it out (filtered_by NULL: kept); a row
-- stands for `records` identical input records:
--   no_parent       no customer has this email
--   no_consent      the customer is not trusted
--   before_consent  taken before the consent date (scope `reading`)
--   duplicate       an exact repeat of a kept reading
WITH readings AS (
  -- Each distinct reading once, with the number of identical records of it that landed.
  SELECT `user`, `timestamp`, x, y, z, count(*) AS copies
  FROM accelerometer_landing
  GROUP BY `user`, `timestamp`, x, y, z
),
known_emails AS (SELECT DISTINCT email FROM customer_landing),
ruled AS (
  SELECT r.`user`, r.`timestamp`, r.x, r.y, r.z, r.copies,
         CASE
           WHEN k.email IS NULL THEN 'no_parent'
           WHEN c.email IS NULL THEN 'no_consent'
           WHEN :consent_scope = 'reading' AND r.`timestamp` < c.shareWithResearchAsOfDate THEN 'before_consent'
         END AS rule
  FROM readings r
  LEFT JOIN known_emails k ON k.email = r.`user`
  LEFT JOIN customer_trusted c ON c.email = r.`user`
)
-- A reading a rule leaves out stands for all its copies. A kept reading is kept once (part 1)
-- and its other copies are exact repeats (part 2).
SELECT `user`, `timestamp`, x, y, z,
       CASE WHEN part.n = 2 THEN 'duplicate' ELSE rule END AS filtered_by,
       CASE WHEN part.n = 2 THEN copies - 1 WHEN rule IS NULL THEN 1 ELSE copies END AS records
FROM ruled
JOIN (VALUES (1), (2)) AS part(n) ON part.n = 1 OR (rule IS NULL AND copies > 1)
