-- customer_trusted: the current record of each customer who consented to research.
--
-- A customer's current record is the one with the latest lastUpdateDate. On a
-- tie, a record without consent wins (consent holds only when every tied
-- record gives it); the remaining columns make the choice deterministic. A
-- later record without shareWithResearchAsOfDate revokes consent.
--
-- Every input record, with the rule that leaves it out (filtered_by NULL: kept), one row each:
--   superseded   an older record of the same email
--   no_consent   the current record has no shareWithResearchAsOfDate
WITH ranked AS (
  SELECT *,
    row_number() OVER (
      PARTITION BY email
      ORDER BY lastUpdateDate DESC, shareWithResearchAsOfDate DESC NULLS FIRST, source_file DESC,
               serialNumber, registrationDate, customerName, phone, birthDay,
               shareWithPublicAsOfDate, shareWithFriendsAsOfDate
    ) AS recency
  FROM customer_landing
)
SELECT customerName, email, phone, birthDay, serialNumber, registrationDate, lastUpdateDate,
       shareWithResearchAsOfDate, shareWithPublicAsOfDate, shareWithFriendsAsOfDate,
       CASE
         WHEN recency > 1 THEN 'superseded'
         WHEN shareWithResearchAsOfDate IS NULL THEN 'no_consent'
       END AS filtered_by,
       1 AS records
FROM ranked
