import { Module } from '@nestjs/common';
import { DealCopyHandler } from './deal-copy.handler';

/**
 * The example handler that calls Bitrix24: each changed deal is fetched with the portal client and
 * copied into `example_deals`. Enabled with EXAMPLE_HANDLERS=true, like the other examples.
 */
@Module({ providers: [DealCopyHandler] })
export class ExampleDealCopyModule {}
