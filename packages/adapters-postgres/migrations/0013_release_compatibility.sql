-- Rolling upgrades enforced (issue 25): the database says which releases may run on it. A
-- release is the number of its newest numbered migration; one older than oldest_release finds the
-- schema changed under code it does not have, stays not ready and serves nothing (migrate.ts).
-- A migration that breaks the code of earlier releases raises it in the same file.
CREATE TABLE schema_compatibility (
  only_row        boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  oldest_release  integer NOT NULL
);
-- 12: from 0012 on, write_order_group reads a guard's order as { status, refundedUnits }; a
-- release before it sends orderStatus, and its cancels would fail (500) or its orders miss refunds.
INSERT INTO schema_compatibility (oldest_release) VALUES (12);
