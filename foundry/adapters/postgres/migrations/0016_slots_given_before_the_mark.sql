-- Slots given before 0015: a job the previous release's free_slot made ready carries no mark
-- (0015 marks such a job by leaving `parked` set), so cancelling or deleting it after the
-- upgrade passed its slot on to no one, and with no job of its key running, the jobs parked
-- for the key waited for ever. Every ready job with a concurrency whose key has jobs parked
-- for a slot gets the mark: such a job was made ready by a freed slot, or is one no claim has
-- met yet; leaving, it passes a slot on only while its key runs fewer jobs than its
-- concurrency (statements.py's PASS_SLOT_ON), and the claim still parks a job over it, so a
-- mark too many never runs more jobs at once than the concurrency.
UPDATE jobs j SET parked = nextval('job_seq')
 WHERE j.state = 'ready' AND j.limit_concurrency IS NOT NULL AND j.parked IS NULL
   AND EXISTS (SELECT 1 FROM jobs p
                WHERE p.queue = j.queue AND p.limit_key = j.limit_key
                  AND p.parked IS NOT NULL AND NOT p.reserved AND p.state = 'delayed');
