import { MigrationInterface, QueryRunner } from 'typeorm';

/** Each user's own token chain from the app frame, kept apart from the portal's chain. */
export class PortalUserTokens1796400000000 implements MigrationInterface {
  name = 'PortalUserTokens1796400000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "portal_user_tokens" (
        "member_id" character varying(64) NOT NULL,
        "user_id" integer NOT NULL,
        "access_token" text NOT NULL,
        "refresh_token" text,
        "access_expires_at" TIMESTAMP WITH TIME ZONE NOT NULL,
        "is_admin" boolean NOT NULL DEFAULT false,
        "key_id" character varying(32) NOT NULL,
        "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "pk_portal_user_tokens" PRIMARY KEY ("member_id", "user_id"),
        CONSTRAINT "fk_portal_user_tokens_portal" FOREIGN KEY ("member_id")
          REFERENCES "portals"("member_id") ON DELETE CASCADE
      )`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "portal_user_tokens"`);
  }
}
