import { MigrationInterface, QueryRunner } from 'typeorm';

export class InitialSchema1795704041176 implements MigrationInterface {
  name = 'InitialSchema1795704041176';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "stored_events" ("id" BIGSERIAL NOT NULL, "member_id" character varying(64) NOT NULL, "source" character varying(8) NOT NULL, "queue_id" bigint, "message_id" character varying(64), "process_id" character varying(64), "dedup_key" character varying(64), "event_name" character varying(128) NOT NULL, "ordering_key" character varying(200), "data" jsonb, "additional" jsonb, "bitrix_timestamp" TIMESTAMP WITH TIME ZONE, "received_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "status" character varying(16) NOT NULL DEFAULT 'pending', "attempts" integer NOT NULL DEFAULT '0', "last_error" text, "next_attempt_at" TIMESTAMP WITH TIME ZONE DEFAULT now(), "processed_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "ck_stored_events_status" CHECK ("status" IN ('pending','processed','failed','dead')), CONSTRAINT "ck_stored_events_source" CHECK ("source" IN ('offline','online')), CONSTRAINT "pk_stored_events" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_stored_events_received_at" ON "stored_events"  ("received_at") `,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_stored_events_status" ON "stored_events"  ("status", "id") `,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_stored_events_event_name" ON "stored_events"  ("event_name", "id") `,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_stored_events_member_id" ON "stored_events"  ("member_id", "id") `,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_stored_events_due" ON "stored_events"  ("next_attempt_at") WHERE "status" IN ('pending','failed')`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_stored_events_member_dedup_key" ON "stored_events"  ("member_id", "dedup_key") WHERE "dedup_key" IS NOT NULL`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_stored_events_member_queue_id" ON "stored_events"  ("member_id", "queue_id") WHERE "queue_id" IS NOT NULL`,
    );
    await queryRunner.query(
      `CREATE TABLE "event_attempts" ("id" BIGSERIAL NOT NULL, "event_id" bigint NOT NULL, "attempt" integer NOT NULL, "trigger" character varying(16) NOT NULL, "outcome" character varying(16) NOT NULL, "error" text, "started_at" TIMESTAMP WITH TIME ZONE NOT NULL, "finished_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "ck_event_attempts_trigger" CHECK ("trigger" IN ('automatic','replay')), CONSTRAINT "ck_event_attempts_outcome" CHECK ("outcome" IN ('processed','failed','dead')), CONSTRAINT "pk_event_attempts" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_event_attempts_event_id" ON "event_attempts"  ("event_id", "id") `,
    );
    await queryRunner.query(
      `CREATE TABLE "drain_batches" ("member_id" character varying(64) NOT NULL, "process_id" character varying(64) NOT NULL, "state" character varying(16) NOT NULL, "event_count" integer NOT NULL, "committed_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "cleared_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "ck_drain_batches_state" CHECK ("state" IN ('committed','cleared')), CONSTRAINT "pk_drain_batches" PRIMARY KEY ("member_id", "process_id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_drain_batches_uncleared" ON "drain_batches"  ("member_id") WHERE "state" = 'committed'`,
    );
    await queryRunner.query(
      `CREATE TABLE "offline_queue_states" ("member_id" character varying(64) NOT NULL, "lease_holder" character varying(128), "lease_token" bigint NOT NULL DEFAULT '0', "lease_expires_at" TIMESTAMP WITH TIME ZONE, "drain_requested_at" TIMESTAMP WITH TIME ZONE, "last_drain_started_at" TIMESTAMP WITH TIME ZONE, "last_drain_finished_at" TIMESTAMP WITH TIME ZONE, "last_drain_outcome" character varying(32), "last_drain_error" character varying(1000), "last_drain_events" integer NOT NULL DEFAULT '0', "total_drained_events" bigint NOT NULL DEFAULT '0', CONSTRAINT "pk_offline_queue_states" PRIMARY KEY ("member_id"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "portals" ("member_id" character varying(64) NOT NULL, "domain" character varying(255) NOT NULL, "client_endpoint" character varying(512) NOT NULL, "server_endpoint" character varying(512), "status" character varying(32) NOT NULL DEFAULT 'new', "status_reason" character varying(500), "status_changed_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "plan_status" character(1), "delivery_mode" character varying(16) NOT NULL DEFAULT 'exactly-once', "application_token_hash" bytea, "scope" character varying(1000), "installer_user_id" integer, "rate_limit_rps" real, "rate_limit_burst" integer, "bound_events" jsonb NOT NULL DEFAULT '[]', "bound_at" TIMESTAMP WITH TIME ZONE, "installed_at" TIMESTAMP WITH TIME ZONE, "uninstalled_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "ck_portals_delivery_mode" CHECK ("delivery_mode" IN ('exactly-once','at-most-once')), CONSTRAINT "ck_portals_status" CHECK ("status" IN ('new','active','needs_reinstall','payment_required','uninstalled','deleted')), CONSTRAINT "pk_portals" PRIMARY KEY ("member_id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_portals_status_member_id" ON "portals"  ("status", "member_id") `,
    );
    await queryRunner.query(
      `CREATE TABLE "portal_status_changes" ("id" BIGSERIAL NOT NULL, "member_id" character varying(64) NOT NULL, "from_status" character varying(32), "to_status" character varying(32) NOT NULL, "reason" character varying(500) NOT NULL, "changed_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "pk_portal_status_changes" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_portal_status_changes_member_id" ON "portal_status_changes"  ("member_id", "id") `,
    );
    await queryRunner.query(
      `CREATE TABLE "portal_tokens" ("member_id" character varying(64) NOT NULL, "access_token" text, "refresh_token" text, "access_expires_at" TIMESTAMP WITH TIME ZONE, "refresh_expires_at" TIMESTAMP WITH TIME ZONE, "refreshed_at" TIMESTAMP WITH TIME ZONE, "generation" integer NOT NULL DEFAULT '0', "key_id" character varying(32), CONSTRAINT "pk_portal_tokens" PRIMARY KEY ("member_id"))`,
    );
    await queryRunner.query(
      `ALTER TABLE "event_attempts" ADD CONSTRAINT "fk_event_attempts_event" FOREIGN KEY ("event_id") REFERENCES "stored_events"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "portal_status_changes" ADD CONSTRAINT "fk_portal_status_changes_portal" FOREIGN KEY ("member_id") REFERENCES "portals"("member_id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "portal_tokens" ADD CONSTRAINT "fk_portal_tokens_portal" FOREIGN KEY ("member_id") REFERENCES "portals"("member_id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE "portal_tokens" DROP CONSTRAINT "fk_portal_tokens_portal"`,
    );
    await queryRunner.query(
      `ALTER TABLE "portal_status_changes" DROP CONSTRAINT "fk_portal_status_changes_portal"`,
    );
    await queryRunner.query(
      `ALTER TABLE "event_attempts" DROP CONSTRAINT "fk_event_attempts_event"`,
    );
    await queryRunner.query(`DROP TABLE "portal_tokens"`);
    await queryRunner.query(`DROP INDEX "public"."ix_portal_status_changes_member_id"`);
    await queryRunner.query(`DROP TABLE "portal_status_changes"`);
    await queryRunner.query(`DROP INDEX "public"."ix_portals_status_member_id"`);
    await queryRunner.query(`DROP TABLE "portals"`);
    await queryRunner.query(`DROP TABLE "offline_queue_states"`);
    await queryRunner.query(`DROP INDEX "public"."ix_drain_batches_uncleared"`);
    await queryRunner.query(`DROP TABLE "drain_batches"`);
    await queryRunner.query(`DROP INDEX "public"."ix_event_attempts_event_id"`);
    await queryRunner.query(`DROP TABLE "event_attempts"`);
    await queryRunner.query(`DROP INDEX "public"."uq_stored_events_member_queue_id"`);
    await queryRunner.query(`DROP INDEX "public"."uq_stored_events_member_dedup_key"`);
    await queryRunner.query(`DROP INDEX "public"."ix_stored_events_due"`);
    await queryRunner.query(`DROP INDEX "public"."ix_stored_events_member_id"`);
    await queryRunner.query(`DROP INDEX "public"."ix_stored_events_event_name"`);
    await queryRunner.query(`DROP INDEX "public"."ix_stored_events_status"`);
    await queryRunner.query(`DROP INDEX "public"."ix_stored_events_received_at"`);
    await queryRunner.query(`DROP TABLE "stored_events"`);
  }
}
