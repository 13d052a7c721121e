import { Module } from '@nestjs/common';
import { RetentionService } from './retention.service';

/** Retires processed events and cleared drain batches past their retention. */
@Module({ providers: [RetentionService], exports: [RetentionService] })
export class RetentionModule {}
