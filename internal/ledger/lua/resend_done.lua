-- resend_done.lua: the resend task of a member exists; take the member out of the resend set.
--
-- KEYS[1] -> run hash, KEYS[2] -> counts, KEYS[3] -> the run's resend set, KEYS[4] -> its
-- payloads
-- ARGV[1] -> member, ARGV[2] -> now (unix ms)
-- Returns 1 when the member was removed, 0 when it was not in the set.
return untrack(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
