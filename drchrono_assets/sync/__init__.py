"""Daily operation: change capture and the sensor that keeps every partition current."""
