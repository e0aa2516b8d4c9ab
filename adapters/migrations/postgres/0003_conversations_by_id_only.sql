-- A conversation is found by its id (the user's key) and nothing else: no query looks
-- conversations up by user or by status. Their two indexes only cost writes, two index
-- entries rewritten on every turn, so they go. Nothing reads differently: a lookup by user
-- or status, were one ever made, would scan the table instead.
DROP INDEX conversations_by_user;
DROP INDEX conversations_by_status;
