"""The shop's jobs. ``after_commit=True``: every dispatch waits for the transaction."""

import foundry
from shop.models import Customer

registry = foundry.JobRegistry(after_commit=True)


@registry.job(name="shop.welcome", queue="mail")
def send_welcome(customer_id: int) -> str:
    """Greet a new customer; the row is visible here because the job left after the commit."""
    customer = Customer.objects.get(pk=customer_id)
    return f"welcome, {customer.email}"
