-- Register a recipe name unless it exists. Binds: :recipe.
INSERT INTO recipes (recipe) VALUES (:recipe) ON CONFLICT (recipe) DO NOTHING
