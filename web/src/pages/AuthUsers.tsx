import { Page } from "@/components/AppShell";
import { PageHeader } from "@/components/States";

export default function AuthUsersPage() {
  return (
    <Page>
      <PageHeader title="AuthUsers" />
    </Page>
  );
}
