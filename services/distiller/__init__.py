"""Distiller: turns finished searches into knowledge (Qdrant) and answers knowledge queries."""
