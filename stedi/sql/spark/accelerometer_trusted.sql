-- accelerometer_trusted: phone readings of customers who consented.
--
-- Consent scope `reading` keeps readings taken at or after the customer's
-- shareWithResearchAsOfDate; `customer` keeps every reading of a consenting
-- customer. A record repeated exactly counts once; readings that differ only
-- in x/y/z are distinct and all stay.
--
-- Every input record, with the rule that leaves it out (filtered_by NULL: kept):
--   no_parent       no customer has this email
--   no_consent      the customer is not trusted
--   before_consent  taken before the consent date (scope `reading`)
--   duplicate       an exact repeat of a kept reading
WITH readings AS (
  SELECT `user`, `timestamp`, x, y, z,
    row_number() OVER (PARTITION BY `user`, `timestamp`, x, y, z ORDER BY source_file) AS copy_number
  FROM accelerometer_landing
),
known_emails AS (SELECT DISTINCT email FROM customer_landing)
SELECT r.`user`, r.`timestamp`, r.x, r.y, r.z,
       CASE
         WHEN k.email IS NULL THEN 'no_parent'
         WHEN c.email IS NULL THEN 'no_consent'
         WHEN :consent_scope = 'reading' AND r.`timestamp` < c.shareWithResearchAsOfDate THEN 'before_consent'
         WHEN r.copy_number > 1 THEN 'duplicate'
       END AS filtered_by
FROM readings r
LEFT JOIN known_emails k ON k.email = r.`user`
LEFT JOIN customer_trusted c ON c.email = r.`user`
