"""The Approvals tab: payouts waiting for a second person on a team history."""
