-- Custom (drizzle-kit generate --custom): before 0012 makes a tenant's live tokenizer names
-- unique, older tokenizers that share a name with a newer one of the same tenant get their id
-- appended. The newest keeps the name, which is the one the name already resolved to.
UPDATE `tokenizers` SET `name` = `name` || ' (' || `id` || ')'
WHERE `deleted_at` IS NULL AND `owner` <> 'public' AND EXISTS (
  SELECT 1 FROM `tokenizers` AS `newer`
  WHERE `newer`.`owner` = `tokenizers`.`owner`
    AND `newer`.`name` = `tokenizers`.`name`
    AND `newer`.`deleted_at` IS NULL
    AND (`newer`.`created_at` > `tokenizers`.`created_at`
      OR (`newer`.`created_at` = `tokenizers`.`created_at` AND `newer`.`id` > `tokenizers`.`id`))
);
