-- Every Automerge actor id that a stored change uses, bound to the first owner that used it:
-- `<role>:<principal>:<device>` for a device or an API caller, `server` for the server's own
-- writes. The validator refuses a change under an actor bound to another owner, so nobody who
-- reads a document's history can write under a phone's actor and leave the phone with a
-- duplicate sequence number. A binding is written in the transaction that stores the changes
-- it authorises.
CREATE TABLE actors (
    actor    TEXT PRIMARY KEY, -- hex
    owner    TEXT    NOT NULL,
    bound_ms INTEGER NOT NULL
);
