"""Reading runs back and answering questions with them: the typed reader of a run folder,
the tables computed over its rows, significance and comparison. Needs pandas, never torch."""
