-- Storage: the size limit an upload URL was signed with, so that an object uploaded straight to
-- S3 (where a presigned PUT cannot cap the size) is checked against it before it is handed out
-- (docs/decisions/0003-s3-max-size.md). `size` stays NULL until the upload is confirmed.

ALTER TABLE file_metadata ADD COLUMN max_size INTEGER;

CREATE INDEX file_metadata_bucket ON file_metadata (project_id, bucket);
