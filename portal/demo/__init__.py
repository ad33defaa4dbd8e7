"""Demo data (customers, a company, the shop's catalogue) and the usage simulator."""
