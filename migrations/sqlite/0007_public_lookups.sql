-- Customers without an account (issue #16): a notice card is looked up by the number printed
-- on it, and the choice screens list the pickup points near a position.
CREATE INDEX attempts_by_notice ON attempts (notice_number);
CREATE INDEX pickup_points_by_position ON pickup_points (lat, lon);
