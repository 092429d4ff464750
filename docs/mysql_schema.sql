-- comfyui-gateway: MySQL / MariaDB schema.
--
-- KEEP THIS FILE EQUAL TO gateway/store/models.py (tests/store/test_schema.py
-- compares the two and fails when they differ).
--
-- Usage:  mysql -h HOST -u USER -p DATABASE < docs/mysql_schema.sql
-- The gateway also creates missing tables itself at start-up; running this
-- file first is optional but lets a DBA review and own the schema.
-- All timestamps are epoch seconds (DOUBLE). JSON is stored as text.

CREATE TABLE IF NOT EXISTS `workers` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(128) NOT NULL,
  `url` VARCHAR(512) NOT NULL,
  `weight` DOUBLE NOT NULL DEFAULT 1,
  `enabled` TINYINT(1) NOT NULL DEFAULT 1,
  `draining` TINYINT(1) NOT NULL DEFAULT 0,
  `max_queue` INT NOT NULL DEFAULT 1,
  `auth_username` VARCHAR(255) NULL,
  `auth_password` VARCHAR(255) NULL,
  `created_at` DOUBLE NOT NULL,
  `updated_at` DOUBLE NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `workers_url` (`url`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `jobs` (
  `prompt_id` VARCHAR(36) NOT NULL,
  `gateway_job_id` VARCHAR(36) NOT NULL,
  `seq` BIGINT NOT NULL,                 -- arrival order
  `client_id` VARCHAR(255) NULL,
  `priority` INT NOT NULL DEFAULT 0,
  `number` DOUBLE NULL,                  -- ComfyUI's explicit number/front
  `state` VARCHAR(16) NOT NULL,          -- queued|submitted|running|done|failed
  `worker_id` INT NULL,
  `attempts` INT NOT NULL DEFAULT 0,
  `body` LONGTEXT NOT NULL,              -- JSON: prompt, extra_data, ...
  `history` LONGTEXT NULL,               -- JSON: final ComfyUI history entry
  `error` TEXT NULL,                     -- JSON
  `progress` TEXT NULL,                  -- JSON
  `webhook` VARCHAR(1024) NULL,
  `created_at` DOUBLE NOT NULL,
  `submitted_at` DOUBLE NULL,
  `started_at` DOUBLE NULL,
  `finished_at` DOUBLE NULL,
  `updated_at` DOUBLE NOT NULL,          -- other instances read what changed since
  `epoch` BIGINT NULL,                   -- dispatcher lease epoch of the last send intent
  PRIMARY KEY (`prompt_id`),
  UNIQUE KEY `jobs_gateway_job_id` (`gateway_job_id`),
  KEY `jobs_created_at` (`created_at`),
  KEY `jobs_finished_at` (`finished_at`),
  KEY `jobs_updated_at` (`updated_at`),
  KEY `jobs_state_created_at` (`state`, `created_at`),
  KEY `jobs_worker_id_created_at` (`worker_id`, `created_at`),
  KEY `jobs_client_id_created_at` (`client_id`, `created_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `uploads` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `sha256` CHAR(64) NOT NULL,
  `type` VARCHAR(16) NOT NULL,
  `subfolder` VARCHAR(255) NOT NULL,
  `name` VARCHAR(255) NOT NULL,
  `size` BIGINT NOT NULL,
  `created_at` DOUBLE NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uploads_type_subfolder_name` (`type`, `subfolder`, `name`),
  KEY `uploads_sha256` (`sha256`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `outputs` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `prompt_id` VARCHAR(36) NOT NULL,
  `worker_id` INT NULL,
  `type` VARCHAR(16) NOT NULL,
  `subfolder` VARCHAR(255) NOT NULL,
  `filename` VARCHAR(255) NOT NULL,
  `created_at` DOUBLE NOT NULL,
  PRIMARY KEY (`id`),
  KEY `outputs_prompt_id` (`prompt_id`),
  KEY `outputs_filename_subfolder_type` (`filename`, `subfolder`, `type`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Each job's timeline: queued, sent to a worker, started, worker lost, done or failed (written by the dispatcher).
CREATE TABLE IF NOT EXISTS `job_events` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `prompt_id` VARCHAR(36) NOT NULL,
  `at` DOUBLE NOT NULL,                  -- epoch seconds
  `kind` VARCHAR(16) NOT NULL,           -- queued | sent | started | requeued | lost | priority | done | failed
  `worker_id` INT NULL,
  `worker` VARCHAR(255) NULL,            -- the worker's name at the time
  `detail` VARCHAR(255) NULL,
  PRIMARY KEY (`id`),
  KEY `job_events_prompt_id` (`prompt_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `settings` (
  `key` VARCHAR(64) NOT NULL,
  `value` TEXT NOT NULL,                 -- JSON
  PRIMARY KEY (`key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The dispatcher lease: one instance of a cluster holds it and sends jobs to workers. `epoch` grows
-- with every new holder and is checked by every dispatcher write (fencing); `expires_at` is in the
-- database's own clock.
CREATE TABLE IF NOT EXISTS `gateway_lease` (
  `name` VARCHAR(32) NOT NULL,
  `holder` VARCHAR(64) NULL,
  `holder_name` VARCHAR(255) NULL,
  `epoch` BIGINT NOT NULL DEFAULT 0,
  `expires_at` DOUBLE NOT NULL DEFAULT 0,
  `acquired_at` DOUBLE NULL,
  PRIMARY KEY (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Gateway processes of the cluster and their heartbeats (the admin page's Instances panel).
CREATE TABLE IF NOT EXISTS `gateway_instances` (
  `id` VARCHAR(64) NOT NULL,
  `name` VARCHAR(255) NOT NULL,
  `address` VARCHAR(512) NULL,
  `version` VARCHAR(32) NOT NULL,
  `role` VARCHAR(16) NOT NULL,
  `pid` INT NULL,
  `started_at` DOUBLE NOT NULL,
  `heartbeat_at` DOUBLE NOT NULL,
  PRIMARY KEY (`id`),
  KEY `gateway_instances_heartbeat_at` (`heartbeat_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Cluster-wide counters (job_seq: the arrival order of jobs, whichever instance accepted them).
CREATE TABLE IF NOT EXISTS `gateway_counters` (
  `name` VARCHAR(32) NOT NULL,
  `value` BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- What the dispatcher last saw of each worker (JSON), and the hash of its /object_info.
CREATE TABLE IF NOT EXISTS `worker_status` (
  `worker_id` INT NOT NULL,
  `status` TEXT NOT NULL,
  `object_info_hash` CHAR(64) NULL,
  `updated_at` DOUBLE NOT NULL,
  PRIMARY KEY (`worker_id`),
  KEY `worker_status_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Workers' /object_info (zlib-compressed JSON), once per content hash.
CREATE TABLE IF NOT EXISTS `object_infos` (
  `hash` CHAR(64) NOT NULL,
  `body` LONGBLOB NOT NULL,
  `created_at` DOUBLE NOT NULL,
  PRIMARY KEY (`hash`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The bytes of uploads in 1 MB parts, so an upload any instance accepted reaches every instance.
CREATE TABLE IF NOT EXISTS `upload_blobs` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `sha256` CHAR(64) NOT NULL,
  `part` INT NOT NULL,
  `data` LONGBLOB NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `upload_blobs_sha256_part` (`sha256`, `part`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Webhook notifications not yet delivered (kept across restarts; sent by the dispatcher).
CREATE TABLE IF NOT EXISTS `webhook_outbox` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `prompt_id` VARCHAR(36) NOT NULL,
  `url` VARCHAR(1024) NOT NULL,
  `payload` LONGTEXT NOT NULL,           -- JSON: the body that is POSTed
  `attempts` INT NOT NULL DEFAULT 0,
  `next_attempt_at` DOUBLE NOT NULL,     -- epoch seconds of the next try
  `last_error` VARCHAR(255) NULL,
  `created_at` DOUBLE NOT NULL,
  PRIMARY KEY (`id`),
  KEY `webhook_outbox_next_attempt_at` (`next_attempt_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The ComfyUI editor's user data (settings, saved workflows), the same on every instance.
CREATE TABLE IF NOT EXISTS `editor_files` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `user` VARCHAR(64) NOT NULL,           -- the editor's user ("default" in single-user mode)
  `path` VARCHAR(512) NOT NULL,          -- relative to the user's root, "/"-separated
  `is_dir` TINYINT(1) NOT NULL DEFAULT 0,
  `content` LONGBLOB NULL,               -- NULL for a folder
  `size` BIGINT NOT NULL DEFAULT 0,
  `created_at` DOUBLE NOT NULL,
  `modified_at` DOUBLE NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `editor_files_user_path` (`user`, `path`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
