-- Scheduler: per-job failure notices, the occurrence each run stands for, and the indexes the
-- loop needs (unfinished runs at start-up, pruning old history, the newest run of each job).

ALTER TABLE cron_jobs ADD COLUMN notify_on_failure INTEGER NOT NULL DEFAULT 1;

ALTER TABLE cron_job_runs ADD COLUMN scheduled_for TEXT;

CREATE INDEX cron_jobs_project ON cron_jobs (project_id);
CREATE INDEX cron_job_runs_running ON cron_job_runs (status) WHERE status = 'running';
CREATE INDEX cron_job_runs_started ON cron_job_runs (started_at);
DROP INDEX cron_job_runs_job;
CREATE INDEX cron_job_runs_job ON cron_job_runs (job_id, started_at, id);
