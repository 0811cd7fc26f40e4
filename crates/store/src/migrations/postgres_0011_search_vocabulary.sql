-- Nothing on PostgreSQL: its search reads the GIN indexes (the migration is SQLite's).
SELECT 1;
