import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

/** Query strings are text: only plain decimal digits become a number, anything else fails IsInt. */
export const toInteger = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : value;

/** `?limit=&cursor=` of every admin list. */
export class PageQueryDto {
  @ApiPropertyOptional({
    type: 'integer',
    description: 'Page size',
    minimum: 1,
    maximum: MAX_PAGE_SIZE,
    default: DEFAULT_PAGE_SIZE,
  })
  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE_SIZE)
  limit: number = DEFAULT_PAGE_SIZE;

  @ApiPropertyOptional({
    description:
      'The `nextCursor` of the previous page, passed back unchanged with the same filters',
  })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * Turns `limit + 1` fetched rows into a page: the extra row only proves there is more, and the
 * cursor points at the last row actually returned.
 */
export function toPage<Row, Item>(
  rows: Row[],
  limit: number,
  keyOf: (row: Row) => string,
  encode: (key: string) => string,
  present: (row: Row) => Item,
): Page<Item> {
  const pageRows = rows.slice(0, limit);
  const hasMore = rows.length > limit;
  return {
    items: pageRows.map(present),
    nextCursor: hasMore ? encode(keyOf(pageRows[pageRows.length - 1])) : null,
  };
}
