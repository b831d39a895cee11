import { Link } from "react-router-dom";
import { Compass } from "lucide-react";
import { Button } from "@/components/ui/button";
import { EmptyState } from "@/components/States";
import { Page } from "@/components/AppShell";

export default function NotFoundPage() {
  return (
    <Page>
      <EmptyState
        icon={Compass}
        title="Page not found"
        description="This address does not match any page of the dashboard."
        action={
          <Button asChild size="sm">
            <Link to="/">Go to the dashboard</Link>
          </Button>
        }
      />
    </Page>
  );
}
