-- Gatehouse schema v3: how many uses the person allowed the token of an approved action.
-- Never edit this file once landed: add 0004_*.sql instead.

-- NULL: the default (one use for a token carrying authorization_details, otherwise unlimited).
ALTER TABLE approvals ADD COLUMN granted_uses INTEGER;
