-- machine_learning_curated: step trainer readings paired with the same
-- customer's phone readings at the same instant, without personal data.
--
-- The pair is made through the customer who owns the serial number: joining on
-- the timestamp alone would pair one customer's step trainer with another
-- customer's phone whenever two customers share an instant.
SELECT s.serialNumber, s.sensorReadingTime, s.distanceFromObject, a.`timestamp`, a.x, a.y, a.z
FROM step_trainer_trusted s
JOIN customer_curated c ON c.serialNumber = s.serialNumber
JOIN accelerometer_trusted a ON a.`user` = c.email AND a.`timestamp` = s.sensorReadingTime
