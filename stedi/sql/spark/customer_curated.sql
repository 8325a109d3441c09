-- customer_curated: trusted customers who have trusted accelerometer data.
--
-- Every input record, with the rule that leaves it out (filtered_by NULL: kept), one row each:
--   no_trusted_readings  no reading of the customer is in accelerometer_trusted
WITH readers AS (SELECT DISTINCT `user` FROM accelerometer_trusted)
SELECT c.customerName, c.email, c.phone, c.birthDay, c.serialNumber, c.registrationDate, c.lastUpdateDate,
       c.shareWithResearchAsOfDate, c.shareWithPublicAsOfDate, c.shareWithFriendsAsOfDate,
       CASE WHEN r.`user` IS NULL THEN 'no_trusted_readings' END AS filtered_by,
       1 AS records
FROM customer_trusted c
LEFT JOIN readers r ON r.`user` = c.email
