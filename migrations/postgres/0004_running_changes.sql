-- imageplane schema 4 (PostgreSQL): operations of changes (update, move, relocate) may be
-- running, when their kind has a delay, until the executor ends them done. No table
-- changes: the version keeps an imageplane that knows only changes done when stored from
-- opening this database (or importing its snapshots), where it would leave them running.
SELECT 1;
